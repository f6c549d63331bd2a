//! Kommo's modal window, `lib/components/base/modal`, as the widget uses it.
//!
//! script.js requires the module (Kommo's RequireJS provides it) and hands
//! the constructor to [`register`] before `init`. [`KommoModal::open`] calls
//! `new Modal({class_name, init($body), destroy})`; the widget mounts its
//! Leptos view into the body it is given and triggers `modal:loaded` and
//! `modal:centrify` on it, as Kommo's own widgets do. The close button (and
//! whatever else Kommo closes a modal with) calls `destroy`, which runs the
//! `on_close` given to `open`; closing from code ([`KommoModal::close`])
//! does not.
//!
//! Documented by Kommo: the constructor options and `.destroy()`. That
//! `init` runs inside the constructor (so the body is known when `new`
//! returns) is what public widgets rely on; unconfirmed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    /// The `Modal` constructor script.js registered.
    static CONSTRUCTOR: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Keeps Kommo's `Modal` constructor for this page (anything else clears it).
pub fn register(constructor: JsValue) {
    CONSTRUCTOR.with(|c| *c.borrow_mut() = constructor.dyn_into::<js_sys::Function>().ok());
}

/// Whether the page gave the widget Kommo's modal.
pub fn available() -> bool {
    CONSTRUCTOR.with(|c| c.borrow().is_some())
}

/// An open Kommo modal. Dropping it closes it.
pub struct KommoModal {
    instance: JsValue,
    body: web_sys::HtmlElement,
    /// Set once closed, by Kommo or by us.
    closed: Rc<Cell<bool>>,
    _init: Closure<dyn FnMut(JsValue)>,
    _destroy: Closure<dyn FnMut()>,
}

/// The DOM element of `$body` (a jQuery object or an element).
fn element_of(body: &JsValue) -> Option<web_sys::HtmlElement> {
    if let Some(el) = body.dyn_ref::<web_sys::HtmlElement>() {
        return Some(el.clone());
    }
    js_sys::Reflect::get(body, &JsValue::from(0)).ok()?.dyn_into().ok()
}

impl KommoModal {
    /// Opens a modal with `class_name` on its root; `on_close` runs when
    /// Kommo closes it (the close button). `None` without Kommo's modal.
    pub fn open(class_name: &str, on_close: impl Fn() + 'static) -> Option<Self> {
        let constructor = CONSTRUCTOR.with(|c| c.borrow().clone())?;
        let body: Rc<RefCell<Option<JsValue>>> = Rc::default();
        let closed = Rc::new(Cell::new(false));
        let init = Closure::<dyn FnMut(JsValue)>::new({
            let body = body.clone();
            move |b: JsValue| *body.borrow_mut() = Some(b)
        });
        let destroy = Closure::<dyn FnMut()>::new({
            let closed = closed.clone();
            move || {
                if !closed.replace(true) {
                    on_close();
                }
            }
        });
        let options = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&options, &JsValue::from_str(k), v).is_ok();
        let ok = set("class_name", &JsValue::from_str(class_name))
            && set("init", init.as_ref())
            && set("destroy", destroy.as_ref());
        if !ok {
            return None;
        }
        let instance = match js_sys::Reflect::construct(&constructor, &js_sys::Array::of1(&options)) {
            Ok(instance) => instance,
            Err(e) => {
                web_sys::console::error_2(&"callcard: Kommo's modal failed to open".into(), &e);
                return None;
            }
        };
        let jquery_body = body.borrow_mut().take();
        let Some(element) = jquery_body.as_ref().and_then(element_of) else {
            web_sys::console::error_1(&"callcard: Kommo's modal gave no body".into());
            closed.set(true);
            call_destroy(&instance);
            return None;
        };
        Some(Self { instance, body: element, closed, _init: init, _destroy: destroy })
    }

    /// The modal's body, to mount into.
    pub fn body(&self) -> &web_sys::HtmlElement {
        &self.body
    }

    /// Tells Kommo the body is filled (`modal:loaded`) and may be centred
    /// again (`modal:centrify`), as widgets conventionally do.
    pub fn loaded(&self) {
        let Some(jquery) = js_sys::Reflect::get(&js_sys::global(), &"jQuery".into())
            .ok()
            .and_then(|j| j.dyn_into::<js_sys::Function>().ok())
        else {
            return;
        };
        let Ok(wrapped) = jquery.call1(&JsValue::NULL, &self.body) else { return };
        let Some(trigger) =
            js_sys::Reflect::get(&wrapped, &"trigger".into()).ok().and_then(|t| t.dyn_into::<js_sys::Function>().ok())
        else {
            return;
        };
        for event in ["modal:loaded", "modal:centrify"] {
            let _ = trigger.call1(&wrapped, &JsValue::from_str(event));
        }
    }

    /// Closes the modal without running `on_close`.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        call_destroy(&self.instance);
    }
}

/// `modal.destroy()`.
fn call_destroy(instance: &JsValue) {
    let destroy =
        js_sys::Reflect::get(instance, &"destroy".into()).ok().and_then(|d| d.dyn_into::<js_sys::Function>().ok());
    if let Some(destroy) = destroy {
        if let Err(e) = destroy.call0(instance) {
            web_sys::console::warn_2(&"callcard: closing Kommo's modal failed".into(), &e);
        }
    }
}

impl Drop for KommoModal {
    fn drop(&mut self) {
        self.close();
    }
}
