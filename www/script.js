/*
 * callcard: the script.js Kommo loads for the widget.
 *
 * Kommo's RequireJS loads this file as an AMD module and constructs the
 * returned function with `new`. Everything the widget does lives in the Rust
 * (Leptos) code compiled to wasm; this file only
 *   1. finds the widget's own files at `self.get_settings().path`
 *      (+ `?v=<version>` so a new upload is not served from cache),
 *   2. adds the package's stylesheet `callcard.css` to the page once
 *      (`<link id="callcard-style">`, same `?v=`),
 *   3. imports `pkg/callcard_widget.js` (wasm-bindgen `--target web`) once per
 *      page and initialises it with `pkg/callcard_widget_bg.wasm`,
 *   4. forwards Kommo's callbacks to the wasm exports (docs/design.md):
 *        init                -> widget_modal(Modal), widget_init(self)
 *      where Modal is Kommo's `lib/components/base/modal` (the Call summary
 *      opens in it); init also registers click-to-call:
 *        self.add_action('phone', fn(data)) -> widget_phone(self, data)
 *      (data.value is the clicked number);
 *        bind_actions        -> widget_bind_actions(self)
 *        settings($body)     -> widget_settings(self, element)
 *        onSave(data)        -> widget_on_save(self, data)   (bool, synchronous)
 *        destroy             -> widget_destroy(self)
 *
 * Keep it thin: no behaviour of its own. Failures are reported with
 * APP.notifications.show_message_error and never thrown into Kommo.
 */
define(['jquery', 'lib/components/base/modal'], function ($, Modal) {
  'use strict';

  // Several widget instances (or a second copy of this file loaded with a
  // different ?v=) must share one wasm instance: the import promise lives in
  // this module's scope *and* on window, and whichever runs first wins.
  var GUARD = '__callcard_widget_pkg__';
  var shared = null; // {promise: Promise<module>, module: module|null, reported: bool}

  function guard() {
    if (!shared) {
      shared = window[GUARD] || null;
    }
    return shared;
  }

  // Kommo renders notification text as HTML (believed; unconfirmed), so our
  // own error text is escaped before it is handed over.
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function report(what, err) {
    var detail = err && err.message ? err.message : String(err);
    if (window.console && console.error) {
      console.error('callcard: ' + what, err);
    }
    try {
      var n = window.APP && window.APP.notifications;
      if (n && typeof n.show_message_error === 'function') {
        n.show_message_error({ header: 'callcard', text: escapeHtml(what + ': ' + detail) });
      }
    } catch (e) {
      // Reporting must never throw into Kommo either.
    }
  }

  // The widget package's base URL and the cache-busting query, from Kommo's
  // settings object (`path` has no trailing slash in Kommo's examples; strip
  // one just in case).
  function locate(self) {
    var s = (self && typeof self.get_settings === 'function' && self.get_settings()) || {};
    var base = String(s.path || '').replace(/\/+$/, '');
    var query = s.version != null && s.version !== '' ? '?v=' + encodeURIComponent(s.version) : '';
    return { base: base, query: query };
  }

  // The widget's stylesheet, once per page whatever the number of instances.
  var STYLE_ID = 'callcard-style';
  function style(loc) {
    if (!loc.base || document.getElementById(STYLE_ID)) {
      return;
    }
    var link = document.createElement('link');
    link.id = STYLE_ID;
    link.rel = 'stylesheet';
    link.href = loc.base + '/callcard.css' + loc.query;
    document.head.appendChild(link);
  }

  // Import and initialise the wasm package once per page. Resolves to the
  // module namespace object with the widget_* exports.
  function load(self) {
    var g = guard();
    if (g) {
      return g.promise;
    }
    var loc = locate(self);
    style(loc);
    g = shared = window[GUARD] = { promise: null, module: null, reported: false };
    g.promise = Promise.resolve()
      .then(function () {
        if (!loc.base) {
          throw new Error('get_settings().path is empty');
        }
        return import(loc.base + '/pkg/callcard_widget.js' + loc.query);
      })
      .then(function (mod) {
        // wasm-bindgen --target web: the default export fetches and
        // instantiates the .wasm; it must finish before any export is used.
        return Promise.resolve(
          mod['default']({ module_or_path: loc.base + '/pkg/callcard_widget_bg.wasm' + loc.query })
        ).then(function () {
          g.module = mod;
          return mod;
        });
      });
    g.promise['catch'](function (err) {
      if (!g.reported) {
        g.reported = true;
        report('the widget could not be loaded', err);
      }
    });
    return g.promise;
  }

  // The loaded module, or null while loading / after a failure.
  function loaded() {
    var g = guard();
    return g && g.module;
  }

  // Run `fn(module)` once the package is loaded; errors are reported.
  function forward(self, name, fn) {
    load(self)
      .then(function (mod) {
        fn(mod);
      })
      ['catch'](function (err) {
        // Load failures were reported by load(); report only call failures.
        if (loaded()) {
          report(name + ' failed', err);
        }
      });
  }

  return function () {
    var self = this;

    this.callbacks = {
      render: function () {
        return true;
      },

      init: function () {
        forward(self, 'init', function (mod) {
          mod.widget_modal(Modal);
          mod.widget_init(self);
        });
        // Click-to-call: Kommo calls this for a click on any phone number.
        // Registered at once (not after the package loads) so that a click
        // during loading still reaches the widget once it has loaded.
        if (typeof self.add_action === 'function') {
          self.add_action('phone', function (data) {
            forward(self, 'phone', function (mod) {
              mod.widget_phone(self, data);
            });
          });
        }
        return true;
      },

      bind_actions: function () {
        forward(self, 'bind_actions', function (mod) {
          mod.widget_bind_actions(self);
        });
        return true;
      },

      // Kommo passes the settings modal body as a jQuery object.
      settings: function ($modal_body) {
        var element = ($modal_body && $modal_body[0]) || $modal_body;
        forward(self, 'settings', function (mod) {
          mod.widget_settings(self, element);
        });
        return true;
      },

      // Kommo needs the answer synchronously, so this works only once the
      // package has loaded (it loads at init, long before anyone can press Save).
      onSave: function (data) {
        var mod = loaded();
        if (!mod) {
          report('settings were not saved', new Error('the widget has not finished loading, try again'));
          return false;
        }
        try {
          return mod.widget_on_save(self, data) === true;
        } catch (err) {
          report('settings were not saved', err);
          return false;
        }
      },

      destroy: function () {
        // Nothing to tear down if the package was never requested.
        if (guard()) {
          forward(self, 'destroy', function (mod) {
            mod.widget_destroy(self);
          });
        }
      }
    };

    return this;
  };
});
