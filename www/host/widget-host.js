/*
 * Loads the widget the way Kommo does and gives it Kommo's widget object.
 *
 *   1. reads the package's manifest.json and i18n/<lang>.json from
 *      settings.path (the sandbox serves the unzipped package at
 *      /upl/callcard/widget);
 *   2. require([path + '/script.js?v=' + version]) with the page's real
 *      RequireJS (jquery is configured in host/util.js);
 *   3. builds the widget object: Kommo's methods (get_settings, params,
 *      i18n, $authorizedAjax, set_settings, add_action, ...) are in place
 *      *before* the constructor runs, so script.js may use them right away;
 *   4. calls render -> init -> bind_actions once per page load
 *      (the manifest says init_once: true; the widget's location is
 *      "everywhere", so it runs on every host page);
 *   5. the left nav "Settings" button opens Kommo's widget settings modal:
 *      the manifest's settings are rendered (a `users`-type setting as one
 *      extension field per user), then callbacks.settings($modal_body);
 *      Save calls callbacks.onSave({active:'Y', fields:{...}}) and persists
 *      with PUT /sandbox/widget-settings only when it returns true.
 *
 * DOM hooks: body[data-widget=loading|started|failed|unavailable],
 *   #widget-status; the settings modal .modal.widget-settings-modal with
 *   .widget-settings-form, .widget-settings-field[data-setting=<key>][data-type=<type>],
 *   input.widget-settings-user-input[data-setting=phones][data-user-id=<id>][name="phones[<id>]"],
 *   #widget-settings-save, #widget-settings-cancel, .widget-settings-status.
 * Test helpers: CallcardHost.widget (the widget object), CallcardHost.widgetCalls
 *   (recorded set_settings / add_action calls), CallcardHost.triggerAction(type, data).
 */
(function () {
  'use strict';

  var H = window.CallcardHost;
  var el = H.el;
  var WIDGET_CODE = 'callcard';
  var DEFAULT_PATH = '/upl/callcard/widget';

  var state = {
    raw: null, // the saved settings object as GET /sandbox/widget-settings returned it
    manifest: null,
    i18n: {},
    users: [],
    user: null,
    widget: null
  };
  H.widgetCalls = { set_settings: [], add_action: [] };
  var actions = {};

  function setStatus(kind, text) {
    document.body.setAttribute('data-widget', kind);
    var node = document.getElementById('widget-status');
    if (node) {
      node.textContent = text;
      node.className = 'widget-status widget-status-' + kind;
    }
  }
  H.setWidgetStatus = setStatus;

  function error(header, err) {
    var text = err && err.message ? err.message : String(err);
    if (window.console) {
      console.error(header, err);
    }
    // Our own text goes through the HTML-rendering notification: escape it.
    window.APP.notifications.show_message_error({ header: H.escapeHtml(header), text: H.escapeHtml(text) });
  }

  function basePath() {
    return String((state.raw && state.raw.path) || DEFAULT_PATH).replace(/\/+$/, '');
  }

  function version() {
    if (state.raw && state.raw.version !== undefined && state.raw.version !== null && state.raw.version !== '') {
      return String(state.raw.version);
    }
    var m = state.manifest && state.manifest.widget;
    return m && m.version ? String(m.version) : '';
  }

  // Kommo's `users` setting, as an object {"<user_id>": "<extension>"}.
  H.parseUsersSetting = function (v) {
    if (typeof v === 'string') {
      try {
        v = v.trim() ? JSON.parse(v) : {};
      } catch (e) {
        return {};
      }
    }
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  };

  // What get_settings() returns: the saved settings plus path/version, with
  // the `users` setting as a JSON string, as Kommo may hand it over
  // (kommo-facts: "get_settings() may return it as a JSON string").
  function widgetSettings() {
    var s = $.extend({}, state.raw || {});
    s.path = basePath();
    s.version = version();
    s.widget_code = s.widget_code || WIDGET_CODE;
    if (s.images_path === undefined) {
      s.images_path = s.path + '/images/';
    }
    ['phones', 'users'].forEach(function (key) {
      if (s[key] !== undefined && typeof s[key] !== 'string') {
        s[key] = JSON.stringify(s[key]);
      }
    });
    return s;
  }

  // A one-time token for the current user; Kommo mints a fresh one per call.
  function oneTimeToken() {
    return $.ajax({
      url: '/sandbox/one-time-token',
      method: 'POST',
      contentType: 'application/json',
      dataType: 'json',
      data: JSON.stringify({ user_id: state.user.id })
    });
  }

  // The methods Kommo puts on every widget object. Only get_settings, params,
  // i18n, $authorizedAjax, set_settings and add_action are in the facts file;
  // system(), get_version() and get_install_status() exist in Kommo's widget
  // API too, with fields here as far as they are known.
  function widgetBase() {
    return {
      params: $.extend(widgetSettings(), { widget_code: WIDGET_CODE }),

      get_settings: function () {
        return widgetSettings();
      },

      get_version: function () {
        return version();
      },

      get_install_status: function () {
        return 'installed';
      },

      system: function () {
        var account = window.APP.constant('account') || {};
        return {
          area: document.body.getAttribute('data-area') || 'dashboard',
          amouser_id: state.user && state.user.id,
          amouser: state.user && state.user.login,
          subdomain: account.subdomain,
          domain: window.location.host
        };
      },

      i18n: function (section) {
        return section === undefined ? state.i18n : state.i18n[section];
      },

      // jQuery-ajax-compatible: resolves/rejects with $.ajax's own arguments
      // (data, textStatus, jqXHR) / (jqXHR, textStatus, errorThrown). A token
      // failure rejects with the token request's arguments.
      $authorizedAjax: function (opts) {
        opts = opts || {};
        var d = $.Deferred();
        oneTimeToken()
          .done(function (answer) {
            var token = answer && answer.token;
            var req = $.extend({}, opts, { headers: $.extend({}, opts.headers, { 'X-Auth-Token': token }) });
            $.ajax(req)
              .done(function () {
                d.resolveWith(this, arguments);
              })
              .fail(function () {
                d.rejectWith(this, arguments);
              });
          })
          .fail(function () {
            d.rejectWith(this, arguments);
          });
        return d.promise();
      },

      set_settings: function (s) {
        H.widgetCalls.set_settings.push(s);
      },

      add_action: function (type, fn) {
        H.widgetCalls.add_action.push(type);
        actions[type] = fn;
      }
    };
  }

  // Stand-in for Kommo invoking a registered action (click-to-call on a phone
  // number: add_action('phone', fn) gets {value: '<number>'}).
  H.triggerAction = function (type, data) {
    if (typeof actions[type] !== 'function') {
      throw new Error('no action registered for ' + type);
    }
    return actions[type].call(state.widget, data);
  };

  function callback(name, args) {
    var cb = state.widget && state.widget.callbacks && state.widget.callbacks[name];
    if (typeof cb !== 'function') {
      return undefined;
    }
    return cb.apply(state.widget, args || []);
  }

  function getJSONOrNull(url) {
    return H.fetchJSON('GET', url).then(null, function (err) {
      if (window.console) {
        console.warn(err.message);
      }
      return null;
    });
  }

  // opts: {settings: <saved settings object>, users: [...], user: {...}}
  H.loadWidget = function (opts) {
    state.raw = opts.settings || {};
    state.users = opts.users || [];
    state.user = opts.user;
    setStatus('loading', 'Loading the widget from ' + basePath() + ' …');

    var lang = window.APP.lang_id;
    var i18nUrl = function (l) {
      return basePath() + '/i18n/' + encodeURIComponent(l) + '.json';
    };
    var manifestP = getJSONOrNull(basePath() + '/manifest.json');
    // The user's language, else English (every locale file has the same keys).
    var i18nP = getJSONOrNull(i18nUrl(lang)).then(function (data) {
      if (data || lang === 'en') {
        return data;
      }
      return getJSONOrNull(i18nUrl('en'));
    });

    return Promise.all([manifestP, i18nP]).then(function (r) {
      state.manifest = r[0];
      state.i18n = r[1] || {};
      if (!r[0]) {
        H.showBanner('warning', 'The widget package has no readable manifest.json at ' + basePath() + '/manifest.json.');
      }
      if (!r[1]) {
        H.showBanner('warning', 'The widget package has no readable i18n file at ' + i18nUrl(lang) + (lang === 'en' ? '' : ' nor ' + i18nUrl('en')) + '.');
      }
      var v = version();
      var url = basePath() + '/script.js' + (v ? '?v=' + encodeURIComponent(v) : '');
      return new Promise(function (resolve) {
        window.require(
          [url],
          function (Widget) {
            resolve(start(Widget));
          },
          function (err) {
            setStatus('failed', 'The widget could not be loaded: ' + ((err && err.message) || err));
            error('The widget could not be loaded', err);
            resolve(null);
          }
        );
      });
    });
  };

  function start(Widget) {
    if (typeof Widget !== 'function') {
      setStatus('failed', 'script.js did not define a widget constructor.');
      error('The widget could not be loaded', 'script.js did not define a widget constructor');
      return null;
    }
    try {
      // Like `new Widget()`, but with Kommo's methods on the object before
      // the constructor body runs.
      var w = Object.create(Widget.prototype);
      $.extend(w, widgetBase());
      var ret = Widget.call(w);
      state.widget = H.widget = ret && typeof ret === 'object' ? ret : w;

      if (callback('render') === false) {
        // Kommo is believed to stop here when render returns false (unconfirmed).
        setStatus('failed', 'The widget\u2019s render callback returned false.');
        return state.widget;
      }
      callback('init');
      callback('bind_actions');
      // script.js loads the wasm package itself and reports its own failures
      // (show_message_error); the host only knows the callbacks ran.
      setStatus('started', 'script.js loaded; render, init and bind_actions ran for ' + (state.user ? state.user.name : 'nobody') + '.');
    } catch (err) {
      setStatus('failed', 'The widget failed to start: ' + (err && err.message));
      error('The widget failed to start', err);
    }
    return state.widget;
  }

  // ---- the settings modal -------------------------------------------------

  function settingLabel(key, def) {
    // manifest: settings{key: {name: "settings.key"}} -> i18n lookup.
    var name = def && def.name ? String(def.name) : key;
    var parts = name.split('.');
    var v = state.i18n;
    for (var i = 0; i < parts.length && v; i++) {
      v = v[parts[i]];
    }
    return typeof v === 'string' ? v : name;
  }

  function renderSettingsForm($body) {
    var manifest = state.manifest || {};
    var defs = manifest.settings && typeof manifest.settings === 'object' ? manifest.settings : { phones: { name: 'settings.phones', type: 'users', required: false } };
    var widgetI18n = state.i18n.widget || {};
    var form = el('form', { class: 'widget-settings-form', novalidate: true });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
    });

    Object.keys(defs).forEach(function (key) {
      var def = defs[key] || {};
      var type = def.type || 'text';
      var field = el('fieldset', { class: 'widget-settings-field', 'data-setting': key, 'data-type': type }, [
        el('legend', { class: 'widget-settings-label' }, [settingLabel(key, def) + (def.required ? ' *' : '')])
      ]);
      var saved = state.raw ? state.raw[key] : undefined;
      if (type === 'users' || type === 'users_lp') {
        // One extension field per Kommo user. Kommo's own markup for this
        // field is not documented; names here are <key>[<id>].
        var map = H.parseUsersSetting(saved);
        state.users.forEach(function (u) {
          var id = 'widget-setting-users-' + u.id;
          field.appendChild(
            el('div', { class: 'widget-settings-user-row' }, [
              el('label', { for: id, class: 'widget-settings-user-name' }, [u.name]),
              el('input', { id: id, class: 'widget-settings-user-input', type: 'text', inputmode: 'numeric', name: key + '[' + u.id + ']', 'data-setting': key, 'data-user-id': u.id, value: map[u.id] !== undefined ? String(map[u.id]) : '' })
            ])
          );
        });
      } else if (type === 'custom') {
        // Rendered by the widget itself in its settings callback.
        field.appendChild(el('p', { class: 'widget-settings-hint' }, ['(set up by the widget below)']));
      } else {
        field.appendChild(el('input', { class: 'widget-settings-input', type: type === 'pass' ? 'password' : 'text', name: key, 'data-setting': key, value: saved !== undefined && saved !== null ? String(saved) : '' }));
      }
      form.appendChild(field);
    });

    var status = el('p', { class: 'widget-settings-status', role: 'status' });
    var save = el('button', { type: 'button', id: 'widget-settings-save', class: 'button button-primary js-widget-save' }, ['Save']);
    var cancel = el('button', { type: 'button', id: 'widget-settings-cancel', class: 'button js-widget-cancel' }, ['Cancel']);

    $body.append(
      el('div', { class: 'widget-settings-head' }, [
        el('img', { class: 'widget-settings-logo', alt: '', src: basePath() + '/images/logo_min.png', onerror: function () { this.hidden = true; } }),
        el('div', {}, [
          el('h2', { class: 'widget-settings-title' }, [widgetI18n.name || 'callcard']),
          el('p', { class: 'widget-settings-description' }, [widgetI18n.short_description || ''])
        ])
      ]),
      form,
      // The widget's own settings UI goes into the modal body after this
      // point (callbacks.settings gets the whole body).
      el('div', { class: 'widget-settings-footer' }, [save, cancel, status])
    );
    return { form: form, save: save, cancel: cancel, status: status, defs: defs };
  }

  function collectFields(form, defs) {
    var fields = {};
    Object.keys(defs).forEach(function (key) {
      var type = (defs[key] || {}).type || 'text';
      if (type === 'users' || type === 'users_lp') {
        var map = {};
        form.querySelectorAll('input.widget-settings-user-input[data-setting="' + key + '"]').forEach(function (input) {
          map[input.getAttribute('data-user-id')] = input.value.trim();
        });
        fields[key] = map;
      } else if (type !== 'custom') {
        var input = form.querySelector('input[data-setting="' + key + '"]');
        if (input) {
          fields[key] = input.value;
        }
      }
    });
    return fields;
  }

  H.openSettings = function () {
    if (!state.widget) {
      window.APP.notifications.show_message_error({ header: 'Settings', text: H.escapeHtml('The widget is not loaded, so its settings cannot be opened.') });
      return;
    }
    if (document.querySelector('.modal.widget-settings-modal')) {
      return;
    }
    window.require(['lib/components/base/modal'], function (Modal) {
      var ui;
      var modal = new Modal({
        class_name: 'widget-settings-modal',
        init: function ($body) {
          ui = renderSettingsForm($body);
          try {
            callback('settings', [$body]);
          } catch (err) {
            error('The widget\u2019s settings failed', err);
          }
        },
        destroy: function () {}
      });

      ui.cancel.addEventListener('click', function () {
        modal.destroy();
      });
      ui.save.addEventListener('click', function () {
        var fields = collectFields(ui.form, ui.defs);
        var ok;
        ui.status.textContent = '';
        try {
          ok = callback('onSave', [{ active: 'Y', fields: fields }]);
        } catch (err) {
          error('The widget\u2019s onSave failed', err);
          ok = false;
        }
        if (ok !== true) {
          ui.status.textContent = 'Not saved: the widget did not accept these settings.';
          return;
        }
        // Persist like Kommo: the saved settings object with the new fields,
        // keeping `users` in the form it was stored in.
        var next = $.extend({}, state.raw);
        Object.keys(fields).forEach(function (k) {
          next[k] = typeof (state.raw || {})[k] === 'string' && typeof fields[k] === 'object' ? JSON.stringify(fields[k]) : fields[k];
        });
        ui.save.disabled = true;
        ui.status.textContent = 'Saving…';
        H.fetchJSON('PUT', '/sandbox/widget-settings', next).then(
          function (answer) {
            state.raw = answer && typeof answer === 'object' ? answer : next;
            H.onSettingsSaved && H.onSettingsSaved(state.raw);
            modal.destroy();
            window.APP.notifications.show_message({ header: 'Settings', text: 'Settings saved.' });
          },
          function (err) {
            ui.save.disabled = false;
            ui.status.textContent = 'Not saved: ' + err.message;
            error('Settings were not saved', err);
          }
        );
      });
    });
  };
})();
