/*
 * Host page helpers (the Kommo stand-in). Plain script, loaded after
 * /vendor/require.js and before the other host/*.js files; everything lives
 * on window.CallcardHost so the host files share one namespace.
 *
 * Rule of the host page: text that comes from a server is inserted with
 * textContent (the `el` helper below only ever sets textContent). The one
 * exception is the Kommo-faithful notification header/text in host/app.js.
 */
(function () {
  'use strict';

  var H = (window.CallcardHost = window.CallcardHost || {});

  // Kommo's RequireJS knows jQuery as "jquery"; the sandbox serves the npm
  // package at /vendor/jquery.js. (host/main.js reports a missing RequireJS.)
  if (typeof window.requirejs === 'function') {
    window.requirejs.config({ paths: { jquery: '/vendor/jquery' } });
  } else {
    H.noRequire = true;
  }

  // el('div', {class: 'x', 'data-id': 3, onclick: fn}, [child, 'text'])
  // Strings among the children become text nodes; attributes are set with
  // setAttribute (values are strings, never parsed as HTML).
  H.el = function (tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) {
          return;
        }
        if (k.slice(0, 2) === 'on' && typeof v === 'function') {
          node.addEventListener(k.slice(2), v);
        } else if (k === 'text') {
          node.textContent = String(v);
        } else if (k === 'value') {
          node.value = String(v);
        } else if (v === true) {
          node.setAttribute(k, '');
        } else {
          node.setAttribute(k, String(v));
        }
      });
    }
    H.append(node, children);
    return node;
  };

  H.append = function (node, children) {
    if (children === undefined || children === null) {
      return node;
    }
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === undefined || c === null || c === false) {
        return;
      }
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return node;
  };

  H.clear = function (node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
    return node;
  };

  // For text handed to APIs that render HTML (Kommo's notifications).
  H.escapeHtml = function (s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  };

  // Only http(s) and same-origin relative URLs become links or media
  // sources: a "javascript:" recording link must not run.
  H.safeUrl = function (u) {
    if (typeof u !== 'string' || u.trim() === '') {
      return null;
    }
    try {
      var url = new URL(u, window.location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) {
      return null;
    }
  };

  H.query = new URLSearchParams(window.location.search);

  // A link to another host page that keeps ?user= and ?lang=.
  H.pageUrl = function (page, overrides) {
    var q = new URLSearchParams();
    ['user', 'lang'].forEach(function (k) {
      if (H.query.get(k)) {
        q.set(k, H.query.get(k));
      }
    });
    Object.keys(overrides || {}).forEach(function (k) {
      q.set(k, overrides[k]);
    });
    var s = q.toString();
    return page + (s ? '?' + s : '');
  };

  // An HTTP failure as one readable line: "GET /sandbox/session: 404 Not Found — <detail>".
  function HttpError(method, url, status, statusText, body) {
    var detail = '';
    if (body && typeof body === 'object') {
      // application/problem+json: title, detail, validation-errors.
      detail = [body.title, body.detail].filter(Boolean).join(': ');
      var ve = body['validation-errors'];
      if (Array.isArray(ve)) {
        ve.forEach(function (v) {
          (v.errors || []).forEach(function (e) {
            detail += ' [' + (e.path || '') + ' ' + (e.detail || e.code || '') + ']';
          });
        });
      }
      if (!detail && body.error) {
        detail = String(body.error);
      }
      if (!detail) {
        detail = JSON.stringify(body);
      }
    } else if (typeof body === 'string') {
      // An HTML error page says little beyond its text: drop the markup.
      detail = (/^\s*</.test(body) ? body.replace(/<(style|script)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ') : body)
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 300);
    }
    var head = method + ' ' + url + ': ' + (status ? status + ' ' + (statusText || '') : 'no answer (is the server running?)');
    this.name = 'HttpError';
    this.status = status;
    this.body = body;
    this.message = head.trim() + (detail ? ' — ' + detail : '');
  }
  HttpError.prototype = Object.create(Error.prototype);
  H.HttpError = HttpError;

  // fetch + JSON both ways; rejects with an HttpError carrying the server's
  // own explanation. Resolves to null for 204 / empty bodies.
  H.fetchJSON = function (method, url, body) {
    var init = { method: method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(
      function (res) {
        return res.text().then(function (text) {
          var parsed = text;
          if (text) {
            try {
              parsed = JSON.parse(text);
            } catch (e) {
              parsed = text;
            }
          } else {
            parsed = null;
          }
          if (!res.ok) {
            throw new HttpError(method, url, res.status, res.statusText, parsed);
          }
          if (typeof parsed === 'string') {
            throw new HttpError(method, url, res.status, 'answered with something that is not JSON', parsed);
          }
          return parsed;
        });
      },
      function (err) {
        throw new HttpError(method, url, 0, '', err && err.message);
      }
    );
  };

  H.formatDuration = function (seconds) {
    var s = Math.max(0, Math.round(Number(seconds) || 0));
    var m = Math.floor(s / 60);
    var h = Math.floor(m / 60);
    var pad = function (n) {
      return (n < 10 ? '0' : '') + n;
    };
    return h ? h + ':' + pad(m % 60) + ':' + pad(s % 60) : m + ':' + pad(s % 60);
  };

  // Kommo's "timestamp" for notification dates: the documented example passes
  // Date.now() (milliseconds); unix seconds are accepted too.
  H.toDate = function (ts) {
    if (ts === undefined || ts === null || ts === '') {
      return new Date();
    }
    var n = Number(ts);
    if (!isFinite(n)) {
      var d = new Date(ts);
      return isNaN(d.getTime()) ? new Date() : d;
    }
    return new Date(n < 1e12 ? n * 1000 : n);
  };

  H.formatTime = function (date) {
    return date.toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' });
  };

  // A page-level error banner at the top of the content column.
  H.showBanner = function (kind, text) {
    var box = document.getElementById('host-banners');
    if (!box) {
      return;
    }
    box.appendChild(
      H.el('div', { class: 'host-banner host-banner-' + kind, role: kind === 'error' ? 'alert' : 'status' }, [text])
    );
  };
})();
