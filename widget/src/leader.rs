//! One tab per browser holds the feed: leader election with Web Locks.
//!
//! Every tab asks `navigator.locks.request("callcard-feed", …)`; the browser
//! grants the lock to one tab and queues the others. The holder runs the
//! feed and shows notifications; when it closes (or the widget is destroyed)
//! the browser hands the lock to the next tab at once, which loads the
//! notification ledger from `localStorage` and carries on without repeating a
//! pop-up. Followers mirror the leader's feed state through a
//! `BroadcastChannel` (see [`crate::tabs`]).
//!
//! Where Web Locks are missing every tab leads (the shared ledger still
//! prevents most repeats).

use futures::channel::oneshot;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// The page's global object, as far as Web Locks go.
    type LockGlobal;

    #[wasm_bindgen(method, getter)]
    fn navigator(this: &LockGlobal) -> Option<LockNavigator>;

    type LockNavigator;

    #[wasm_bindgen(method, getter)]
    fn locks(this: &LockNavigator) -> Option<LockManager>;

    /// `navigator.locks`.
    type LockManager;

    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &LockOptions,
        callback: &JsValue,
    ) -> Result<js_sys::Promise, JsValue>;

    /// The options of `locks.request`.
    #[wasm_bindgen(extends = js_sys::Object)]
    type LockOptions;

    #[wasm_bindgen(method, setter)]
    fn set_signal(this: &LockOptions, signal: &web_sys::AbortSignal);
}

/// The lock name; one per browser profile and origin.
pub const LOCK_NAME: &str = "callcard-feed";

/// Held leadership; dropping it releases the lock.
pub struct Lease {
    release: Option<js_sys::Function>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

/// A pending request; dropping it withdraws the request.
struct Waiting {
    controller: Option<web_sys::AbortController>,
    granted: Rc<RefCell<bool>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !*self.granted.borrow() {
            if let Some(c) = &self.controller {
                c.abort();
            }
        }
    }
}

/// Waits until this tab leads. Cancel by dropping the future.
pub async fn lead() -> Lease {
    let Some(locks) = js_sys::global().unchecked_into::<LockGlobal>().navigator().and_then(|n| n.locks()) else {
        return Lease { release: None };
    };
    let (tx, rx) = oneshot::channel::<js_sys::Function>();
    let granted = Rc::new(RefCell::new(false));
    let controller = web_sys::AbortController::new().ok();
    let waiting = Waiting { controller: controller.clone(), granted: granted.clone() };

    let on_grant = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        let mut resolve_slot: Option<js_sys::Function> = None;
        let held = js_sys::Promise::new(&mut |resolve, _reject| resolve_slot = Some(resolve));
        if let Some(resolve) = resolve_slot {
            *granted.borrow_mut() = true;
            if let Err(resolve) = tx.send(resolve) {
                // Nobody waits any more (the widget was destroyed): let go.
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
        held.into()
    });
    let options: LockOptions = js_sys::Object::new().unchecked_into();
    if let Some(c) = &controller {
        options.set_signal(&c.signal());
    }
    match locks.request(LOCK_NAME, &options, &on_grant) {
        Ok(p) => {
            // An aborted request rejects; that is expected, not an error.
            let ignore = Closure::once(|_e: JsValue| {});
            let _ = p.catch(&ignore);
            ignore.forget();
        }
        Err(e) => {
            web_sys::console::warn_2(&"callcard: navigator.locks.request failed, leading anyway".into(), &e);
            return Lease { release: None };
        }
    }
    let lease = match rx.await {
        Ok(release) => Lease { release: Some(release) },
        Err(_) => Lease { release: None },
    };
    drop(waiting);
    lease
}
