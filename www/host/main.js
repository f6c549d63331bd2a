/*
 * Boots a host page: the Kommo stand-in shell (nav, top bar, user switcher,
 * notification bell), the current user and account (APP.constant), the
 * page's own view (PBX panel or Inspect), then the widget, which, like a
 * Kommo "everywhere" widget, runs on every page.
 *
 * <body data-page="desk|inspect">. Sandbox endpoints used:
 *   GET /sandbox/session          -> account + users
 *   GET /sandbox/widget-settings  -> the saved widget settings object
 * When they are unreachable the page says so in a banner instead of going
 * blank, and the PBX panel still works with a typed-in extension.
 *
 * DOM hooks: body[data-page][data-host=booting|ready|degraded],
 *   #host-banners .host-banner(-error|-warning), #user-switcher,
 *   #lang-switcher, #account-name, #current-user, #nav-widget-settings,
 *   .nav-item[data-nav=desk|inspect]. CallcardHost.ready: a Promise that
 *   settles when booting is done.
 */
(function () {
  'use strict';

  var H = window.CallcardHost;
  var el = H.el;
  var page = document.body.getAttribute('data-page') || 'desk';
  var LANGS = ['en', 'es', 'pt', 'tr', 'id', 'ru'];

  document.body.setAttribute('data-host', 'booting');

  // ---- the shell -----------------------------------------------------------
  function shell() {
    document.querySelectorAll('.nav-item[data-href]').forEach(function (a) {
      a.setAttribute('href', H.pageUrl(a.getAttribute('data-href')));
      if (a.getAttribute('data-nav') === page) {
        a.classList.add('nav-item-active');
        a.setAttribute('aria-current', 'page');
      }
    });
    var settingsBtn = document.getElementById('nav-widget-settings');
    settingsBtn.addEventListener('click', function () {
      if (H.openSettings) {
        H.openSettings();
      }
    });
    document.getElementById('bell-slot').appendChild(H.notificationBell());

    var lang = document.getElementById('lang-switcher');
    LANGS.forEach(function (l) {
      lang.appendChild(el('option', { value: l, selected: l === window.APP.lang_id }, [l]));
    });
    lang.addEventListener('change', function () {
      window.location.href = H.pageUrl(window.location.pathname, { lang: lang.value }) + window.location.hash;
    });
  }

  // ---- session -------------------------------------------------------------
  // The sandbox owns the exact shape of /sandbox/session; accepted here:
  // {account: {id, subdomain, ...}, users: [{id, name, login|email, extension?}, ...]}
  // (users may also be an object keyed by id, or under _embedded).
  function normalizeSession(s) {
    s = s || {};
    var emb = s._embedded || {};
    var a = s.account || emb.account || {};
    var account = {
      id: Number(a.id !== undefined ? a.id : s.account_id),
      subdomain: a.subdomain !== undefined ? String(a.subdomain) : s.subdomain !== undefined ? String(s.subdomain) : ''
    };
    var users = s.users || emb.users || a.users || [];
    if (!Array.isArray(users)) {
      users = Object.keys(users).map(function (k) {
        return $.extend({ id: k }, users[k]);
      });
    }
    users = users
      .filter(function (u) {
        return u && u.id !== undefined && u.id !== null;
      })
      .map(function (u) {
        var login = u.login || u.email || '';
        return {
          id: Number(u.id),
          name: String(u.name || 'User ' + u.id),
          login: String(login),
          email: String(u.email || login),
          extension: u.extension !== undefined && u.extension !== null ? String(u.extension) : ''
        };
      });
    return { account: account, users: users, name: a.name ? String(a.name) : '' };
  }

  function userSwitcher(users, current) {
    var sel = document.getElementById('user-switcher');
    H.clear(sel);
    users.forEach(function (u) {
      sel.appendChild(el('option', { value: u.id, selected: current && u.id === current.id }, [u.name + (u.extension ? ' (' + u.extension + ')' : '')]));
    });
    sel.disabled = users.length === 0;
    sel.addEventListener('change', function () {
      window.location.href = H.pageUrl(window.location.pathname, { user: sel.value });
    });
  }

  function settled(p) {
    return p.then(
      function (v) {
        return { ok: true, value: v };
      },
      function (e) {
        return { ok: false, error: e };
      }
    );
  }

  function mountView(users, user) {
    var view = document.getElementById('view');
    if (page === 'inspect') {
      return H.mountInspect(view);
    }
    H.mountPbx(document.getElementById('pbx-panel'), users, user);
    return null;
  }

  function boot($) {
    window.$ = window.$ || $;
    shell();
    return Promise.all([settled(H.fetchJSON('GET', '/sandbox/session')), settled(H.fetchJSON('GET', '/sandbox/widget-settings'))]).then(function (r) {
      var session = r[0];
      var settings = r[1];
      var users = [];
      var user = null;
      var degraded = false;

      if (session.ok) {
        var s = normalizeSession(session.value);
        users = s.users;
        var wanted = H.query.get('user');
        user = users.filter(function (u) {
          return String(u.id) === wanted;
        })[0] || null;
        if (wanted && !user) {
          H.showBanner('warning', 'There is no user ' + wanted + ' in this account; showing ' + (users[0] ? users[0].name : 'nobody') + ' instead.');
        }
        user = user || users[0] || null;
        H.setConstant('account', s.account);
        if (user) {
          H.setConstant('user', { id: user.id, name: user.name, login: user.login, email: user.email });
        }
        document.getElementById('account-name').textContent = s.name || s.account.subdomain || String(s.account.id);
        document.getElementById('current-user').textContent = user ? user.name : '';
        if (!users.length) {
          degraded = true;
          H.showBanner('error', 'The sandbox session has no users.');
        }
      } else {
        degraded = true;
        H.showBanner('error', 'Could not load the Kommo sandbox session. ' + session.error.message);
      }

      if (settings.ok) {
        // Extensions from the saved `phones` setting ({"<user_id>": "<ext>"}, maybe a JSON string),
        // or from `users`, where callcard's first versions saved them.
        var saved = settings.value || {};
        var map = H.parseUsersSetting(saved.phones);
        if (!Object.keys(map).some(function (k) { return map[k] !== '' && map[k] !== null; })) {
          map = H.parseUsersSetting(saved.users);
        }
        users.forEach(function (u) {
          if (map[u.id] !== undefined && map[u.id] !== '') {
            u.extension = String(map[u.id]);
          }
        });
      } else {
        degraded = true;
        H.showBanner('error', 'Could not load the widget settings. ' + settings.error.message);
      }
      userSwitcher(users, user);
      H.onSettingsSaved = function () {
        // Extensions changed: the PBX panel's pick list is rebuilt on reload.
      };

      var viewP = mountView(users, user);
      var widgetP = null;
      if (session.ok && settings.ok && user) {
        widgetP = H.loadWidget({ settings: settings.value, users: users, user: user });
      } else {
        H.setWidgetStatus('unavailable', 'The widget was not loaded: the sandbox session or widget settings are unavailable.');
      }
      document.body.setAttribute('data-host', degraded ? 'degraded' : 'ready');
      return Promise.all([viewP, widgetP]);
    });
  }

  function fatal(text) {
    document.body.setAttribute('data-host', 'degraded');
    H.showBanner('error', text);
    if (H.setWidgetStatus) {
      H.setWidgetStatus('unavailable', 'The widget was not loaded.');
    }
    // The PBX panel needs neither jQuery nor the session: keep it usable.
    var panel = document.getElementById('pbx-panel');
    if (panel && !panel.querySelector('#pbx-ring')) {
      H.mountPbx(panel, [], null);
    }
    var view = document.getElementById('view');
    if (page === 'inspect' && view && !view.querySelector('#inspect-refresh')) {
      H.mountInspect(view);
    }
  }

  if (typeof window.requirejs !== 'function' || H.noRequire) {
    // Without RequireJS there is no jQuery and no widget; say so.
    H.ready = Promise.resolve();
    document.getElementById('bell-slot').appendChild(H.notificationBell());
    fatal('RequireJS is not available at /vendor/require.js (run `npm install` in www/ and serve it through the sandbox).');
    return;
  }

  H.ready = new Promise(function (resolve) {
    window.require(
      ['jquery'],
      function ($) {
        boot($).then(resolve, function (err) {
          fatal('The host page failed to start: ' + (err && err.message));
          if (window.console) {
            console.error(err);
          }
          resolve();
        });
      },
      function (err) {
        fatal('jQuery could not be loaded from /vendor/jquery.js: ' + ((err && err.message) || err));
        resolve();
      }
    );
  });
})();
