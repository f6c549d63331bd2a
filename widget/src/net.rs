//! `fetch` and `WebSocket`, straight on the browser's APIs (smaller than a
//! wrapper crate for the two calls the widget makes).

use crate::kommo::{call_method, prop, AjaxError};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `fetch(url, {headers: {Accept: "application/json"}})`: the status and the
/// body text. A request that got no answer is status 0.
pub async fn get_text(url: &str) -> Result<(u16, String), AjaxError> {
    let headers = js_sys::Object::new();
    let init = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&headers, &"Accept".into(), &"application/json".into());
    let _ = js_sys::Reflect::set(&init, &"headers".into(), &headers);
    let promise = call_method(&js_sys::global(), "fetch", &[JsValue::from_str(url), init.into()])
        .map_err(|e| AjaxError::from_js(&e))?;
    let response = JsFuture::from(js_sys::Promise::resolve(&promise)).await.map_err(|e| AjaxError::from_js(&e))?;
    let status = prop(&response, "status").as_f64().map_or(0, |s| s as u16);
    let text = call_method(&response, "text", &[]).map_err(|e| AjaxError::from_js(&e))?;
    let text = JsFuture::from(js_sys::Promise::resolve(&text)).await.map_err(|e| AjaxError::from_js(&e))?;
    Ok((status, text.as_string().unwrap_or_default()))
}

/// What a [`Socket`] received.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    /// A binary frame (the feed sends none; it still shows the socket lives).
    Binary,
    /// The socket failed or closed; nothing follows.
    Closed,
}

#[derive(Default)]
struct Inbox {
    frames: VecDeque<Frame>,
    waker: Option<Waker>,
}

/// A WebSocket whose frames are read with [`Socket::next`]; closed when dropped.
pub struct Socket {
    ws: web_sys::WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_end: Closure<dyn FnMut()>,
}

impl Socket {
    pub fn open(url: &str) -> Result<Self, JsValue> {
        let ws = web_sys::WebSocket::new(url)?;
        let inbox: Rc<RefCell<Inbox>> = Rc::default();
        let push = {
            let inbox = inbox.clone();
            move |frame: Frame| {
                let mut inbox = inbox.borrow_mut();
                inbox.frames.push_back(frame);
                if let Some(waker) = inbox.waker.take() {
                    waker.wake();
                }
            }
        };
        let on_message = {
            let push = push.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                push(e.data().as_string().map_or(Frame::Binary, Frame::Text));
            })
        };
        let on_end = Closure::<dyn FnMut()>::new(move || push(Frame::Closed));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_end.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_end.as_ref().unchecked_ref()));
        Ok(Self { ws, inbox, _on_message: on_message, _on_end: on_end })
    }

    /// Whether the socket is open (`readyState === OPEN`).
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == web_sys::WebSocket::OPEN
    }

    /// The next frame, in order of arrival.
    pub async fn next(&self) -> Frame {
        poll_fn(|cx| {
            let mut inbox = self.inbox.borrow_mut();
            match inbox.frames.pop_front() {
                Some(frame) => Poll::Ready(frame),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
