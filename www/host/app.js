/*
 * The globals Kommo gives a widget: APP (alias AMOCRM) with APP.constant,
 * APP.lang_id and APP.notifications (pop-ups and the notification centre).
 *
 * Behaviour follows Kommo's documentation (see /work/shared/kommo-facts.md):
 *   - show_notification({text:{header,text}, date?, type}) is a pop-up only,
 *     never stored in the notification centre;
 *   - add_call({text, date?, from?, to?, duration?, link?, element?:{id,type}, header?})
 *     is stored in the notification centre (the bell), keeping only the last
 *     notification per element.id; it also pops up in the interface, as
 *     Kommo's docs say it "will appear in the interface";
 *   - show_message({header,text}) / show_message_error({header,text,link?})
 *     are plain and error pop-ups.
 *
 * HTML: Kommo's own notification templates are believed to insert header and
 * text as HTML (unconfirmed: Kommo's markup is not documented). We do the
 * same with innerHTML, so a widget that forgets to escape a caller's name is
 * caught here rather than in production. Everything else (from, to,
 * duration, links) is inserted as text.
 *
 * DOM hooks (stable, for tests):
 *   #notification-popups                          the pop-up stack (top-right)
 *   .notification-popup[data-type=call]           show_notification pop-ups (data-type = the `type` given)
 *   .notification-popup[data-type=completed_call] the pop-up of an add_call
 *   .notification-popup[data-type=message|error]  show_message / show_message_error
 *     .notification-header / .notification-text / .notification-date /
 *     .notification-link (errors with link) / .notification-close
 *   #notification-bell[data-count] .notification-counter   unread add_call entries
 *   #notification-centre (panel, [hidden] when closed) .call-entry[data-element-id=..][data-element-type=..]
 *     .call-entry-header .call-entry-text .call-from .call-to
 *     .call-duration[data-seconds] .call-date .call-recording-player (audio)
 *     .call-recording-link .call-element-link
 *   CallcardHost.notificationLog: every call to APP.notifications.* ({method, arg, at}).
 */
(function () {
  'use strict';

  var H = window.CallcardHost;
  var el = H.el;
  var POPUP_MS = 10000;

  // ---- APP.constant ------------------------------------------------------
  var constants = {};
  H.setConstant = function (name, value) {
    constants[name] = value;
  };

  var lang = (H.query.get('lang') || 'en').toLowerCase();
  if (!/^[a-z]{2}$/.test(lang)) {
    lang = 'en';
  }

  var APP = (window.APP = window.APP || {});
  APP.lang_id = lang;
  // Kommo's APP.constant('user') / ('account'). The user's `id`, `name`,
  // `login` are what public widgets read; the account's field names are
  // unconfirmed (public widgets read the account from /api/v4/account
  // instead), we provide `id` and `subdomain`.
  APP.constant = function (name) {
    return constants[name];
  };
  window.AMOCRM = APP;

  // ---- pop-ups -----------------------------------------------------------
  var log = (H.notificationLog = []);

  function record(method, arg) {
    var copy;
    try {
      copy = JSON.parse(JSON.stringify(arg));
    } catch (e) {
      copy = String(arg);
    }
    log.push({ method: method, arg: copy, at: Date.now() });
  }

  function popupStack() {
    var stack = document.getElementById('notification-popups');
    if (!stack) {
      stack = el('div', { id: 'notification-popups', 'aria-live': 'polite' });
      document.body.appendChild(stack);
    }
    return stack;
  }

  // The Kommo-faithful part: header and text are HTML (see the top comment).
  function htmlPart(cls, html) {
    var node = el('div', { class: cls });
    node.innerHTML = html === undefined || html === null ? '' : String(html);
    return node;
  }

  function popup(type, header, text, extra) {
    var node = el('div', { class: 'notification-popup notification-popup-' + type, 'data-type': type, role: type === 'error' ? 'alert' : 'status' });
    var timer = null;
    var close = function () {
      clearTimeout(timer);
      if (node.parentNode) {
        node.parentNode.removeChild(node);
      }
    };
    H.append(node, [
      el('button', { type: 'button', class: 'notification-close', title: 'Close', 'aria-label': 'Close', onclick: close }, ['×']),
      htmlPart('notification-header', header),
      htmlPart('notification-text', text)
    ]);
    H.append(node, extra);
    popupStack().appendChild(node);
    timer = setTimeout(close, POPUP_MS);
    return node;
  }

  function dateLine(date) {
    var d = H.toDate(date);
    return el('time', { class: 'notification-date', datetime: d.toISOString() }, [H.formatTime(d)]);
  }

  function textOf(params) {
    var t = (params && params.text) || {};
    return typeof t === 'object' ? t : { header: '', text: t };
  }

  // ---- the notification centre (bell + panel) -----------------------------
  // One entry per element.id, the last one wins (Kommo keeps "only one
  // instance of a call with an element id"). Entries without an element are
  // all kept.
  var entries = []; // newest first: {key, params, unread, at}
  var anon = 0;

  var ELEMENT_TYPES = { 1: 'contact', 2: 'lead', 3: 'company', 12: 'customer' };
  function elementType(t) {
    if (t === undefined || t === null) {
      return '';
    }
    if (ELEMENT_TYPES[t]) {
      return ELEMENT_TYPES[t];
    }
    var s = String(t).toLowerCase();
    // "leads" -> "lead", "companies" -> "company"
    if (s === 'companies') {
      return 'company';
    }
    return s.replace(/s$/, '');
  }

  H.elementType = elementType;

  H.elementHref = function (type, id) {
    return H.pageUrl('inspect.html') + '#' + encodeURIComponent(elementType(type) + '-' + id);
  };

  // Kommo's card URLs (/leads/detail/5, /contacts/detail/31, /companies/…,
  // /customers/…) are amoCRM's paths, which Kommo's own router handles in
  // the page; unconfirmed for Kommo. Here a click on such a link (from a
  // notification, say) opens that record in the sandbox inspector instead.
  var CARD_PATH = /^\/(leads|contacts|companies|customers)\/detail\/(\d+)$/;
  document.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a[href]') : null;
    var match = link && CARD_PATH.exec(link.getAttribute('href'));
    if (match && !event.defaultPrevented && event.button === 0) {
      event.preventDefault();
      window.location.href = H.elementHref(match[1], match[2]);
    }
  });

  // Kommo's "new contact" page, /contacts/add/ (amoCRM's path; whether Kommo
  // pre-fills the phone from ?phone= is unconfirmed). Here a click on such a
  // link opens a small form in the host's modal, prefilled with the phone;
  // Save creates the contact through the API with the user's session and
  // opens it in the inspector.
  // DOM hooks: .modal.host-contact-add #host-contact-name #host-contact-phone #host-contact-save .host-contact-error
  var ADD_CONTACT_PATH = /^\/contacts\/add\/?(\?.*)?$/;
  function addContact(phone) {
    window.require(['lib/components/base/modal'], function (Modal) {
      var name = el('input', { id: 'host-contact-name', type: 'text', required: true });
      var phoneInput = el('input', { id: 'host-contact-phone', type: 'tel', value: phone });
      var error = el('p', { class: 'host-contact-error', role: 'alert', hidden: true });
      var modal = null;
      var form = el('form', { class: 'host-contact-form' }, [
        el('h2', {}, ['New contact']),
        el('label', { for: 'host-contact-name' }, ['Name']),
        name,
        el('label', { for: 'host-contact-phone' }, ['Phone']),
        phoneInput,
        error,
        el('button', { type: 'submit', id: 'host-contact-save' }, ['Save'])
      ]);
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var body = [{ name: name.value.trim() || phoneInput.value, custom_fields_values: [
          { field_code: 'PHONE', values: [{ value: phoneInput.value, enum_code: 'WORK' }] }] }];
        fetch('/api/v4/contacts', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
          .then(function (r) {
            return r.json().then(function (j) {
              if (!r.ok) {
                throw new Error((j && (j.detail || j.title)) || ('HTTP ' + r.status));
              }
              return j;
            });
          })
          .then(function (j) {
            var created = j._embedded && j._embedded.contacts && j._embedded.contacts[0];
            modal.destroy();
            if (created) {
              window.location.href = H.elementHref('contacts', created.id);
            }
          })
          ['catch'](function (err) {
            error.textContent = 'The contact was not created: ' + err.message;
            error.hidden = false;
          });
      });
      modal = new Modal({
        class_name: 'host-contact-add',
        init: function ($body) {
          $body.append(form);
          name.focus();
        }
      });
    });
  }
  document.addEventListener('click', function (event) {
    var link = event.target && event.target.closest ? event.target.closest('a[href]') : null;
    var match = link && ADD_CONTACT_PATH.exec(link.getAttribute('href'));
    if (match && !event.defaultPrevented && event.button === 0) {
      event.preventDefault();
      var query = new URLSearchParams(match[1] || '');
      addContact(query.get('phone') || '');
    }
  });

  H.notificationBell = function () {
    var counter = el('span', { class: 'notification-counter', hidden: true }, ['0']);
    var icon = el('span', { class: 'notification-bell-icon', 'aria-hidden': 'true' });
    // A constant icon, not server text.
    icon.innerHTML = '<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z"/></svg>';
    var bell = el('button', { type: 'button', id: 'notification-bell', class: 'notification-bell', 'data-count': '0', title: 'Notifications', 'aria-label': 'Notifications', 'aria-expanded': 'false', 'aria-controls': 'notification-centre' }, [
      icon,
      counter
    ]);
    var panel = el('aside', { id: 'notification-centre', class: 'notification-centre', hidden: true, 'aria-label': 'Notification centre' }, [
      el('div', { class: 'notification-centre-head' }, [
        el('span', { class: 'notification-centre-title' }, ['Notifications']),
        el('button', { type: 'button', class: 'notification-centre-close', title: 'Close', 'aria-label': 'Close', onclick: function () { toggle(false); } }, ['×'])
      ]),
      el('p', { class: 'notification-centre-empty' }, ['No call notifications yet.']),
      el('ul', { class: 'notification-centre-list' })
    ]);
    function toggle(open) {
      panel.hidden = !open;
      bell.setAttribute('aria-expanded', open ? 'true' : 'false');
      if (open) {
        entries.forEach(function (e) {
          e.unread = false;
        });
        renderCentre();
      }
    }
    bell.addEventListener('click', function () {
      toggle(panel.hidden);
    });
    document.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape' && !panel.hidden && !document.querySelector('.modal')) {
        toggle(false);
      }
    });
    document.body.appendChild(panel);
    setTimeout(renderCentre, 0);
    return bell;
  };

  function renderEntry(e) {
    var p = e.params;
    var element = p.element && typeof p.element === 'object' ? p.element : null;
    var hasElement = element && element.id !== undefined && element.id !== null && element.id !== '';
    var li = el('li', {
      class: 'call-entry' + (e.unread ? ' call-entry-unread' : ''),
      'data-element-id': hasElement ? String(element.id) : null,
      'data-element-type': hasElement ? elementType(element.type) : null,
      'data-entry-key': e.key
    });
    var header = p.header !== undefined && p.header !== null && p.header !== ''
      ? htmlPart('call-entry-header', p.header)
      : el('div', { class: 'call-entry-header' }, ['Call' + (p.from ? ': ' + p.from : '')]);
    H.append(li, [header, htmlPart('call-entry-text', p.text)]);

    var meta = el('div', { class: 'call-entry-meta' });
    if (p.from !== undefined && p.from !== null && p.from !== '') {
      H.append(meta, [el('span', { class: 'call-label' }, ['From ']), el('span', { class: 'call-from' }, [String(p.from)])]);
    }
    if (p.to !== undefined && p.to !== null && p.to !== '') {
      H.append(meta, [el('span', { class: 'call-label' }, [' to ']), el('span', { class: 'call-to' }, [String(p.to)])]);
    }
    if (p.duration !== undefined && p.duration !== null && p.duration !== '') {
      var secs = Number(p.duration);
      H.append(meta, [
        el('span', { class: 'call-label' }, [' · ']),
        el('span', { class: 'call-duration', 'data-seconds': isFinite(secs) ? String(secs) : null }, [isFinite(secs) ? H.formatDuration(secs) : String(p.duration)])
      ]);
    }
    var d = H.toDate(p.date === undefined ? e.at : p.date);
    H.append(meta, [el('span', { class: 'call-label' }, [' · ']), el('time', { class: 'call-date', datetime: d.toISOString() }, [H.formatTime(d)])]);
    li.appendChild(meta);

    if (p.link) {
      var url = H.safeUrl(String(p.link));
      var rec = el('div', { class: 'call-entry-recording' });
      if (url) {
        H.append(rec, [
          el('audio', { class: 'call-recording-player', controls: true, preload: 'none', src: url }),
          el('a', { class: 'call-recording-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, ['Recording'])
        ]);
      } else {
        // Not an http(s) link: show it, never follow it.
        H.append(rec, [el('span', { class: 'call-recording-link call-recording-unsafe' }, ['Recording: ' + String(p.link)])]);
      }
      li.appendChild(rec);
    }
    if (hasElement) {
      var type = elementType(element.type) || 'record';
      li.appendChild(el('a', { class: 'call-element-link', href: H.elementHref(element.type, element.id) }, ['Open ' + type + ' #' + element.id]));
    }
    return li;
  }

  function renderCentre() {
    var bell = document.getElementById('notification-bell');
    var panel = document.getElementById('notification-centre');
    var unread = entries.filter(function (e) {
      return e.unread;
    }).length;
    if (bell) {
      bell.setAttribute('data-count', String(unread));
      var counter = bell.querySelector('.notification-counter');
      counter.textContent = String(unread);
      counter.hidden = unread === 0;
    }
    if (panel) {
      var list = H.clear(panel.querySelector('.notification-centre-list'));
      entries.forEach(function (e) {
        list.appendChild(renderEntry(e));
      });
      panel.querySelector('.notification-centre-empty').hidden = entries.length > 0;
    }
  }

  // ---- APP.notifications --------------------------------------------------
  APP.notifications = {
    show_notification: function (params) {
      record('show_notification', params);
      var t = textOf(params);
      popup(String((params && params.type) || 'call'), t.header, t.text, [dateLine(params && params.date)]);
    },

    add_call: function (params) {
      record('add_call', params);
      params = params || {};
      var element = params.element && typeof params.element === 'object' ? params.element : null;
      var key = element && element.id !== undefined && element.id !== null && element.id !== ''
        ? 'element-' + String(element.id)
        : 'anon-' + ++anon;
      entries = entries.filter(function (e) {
        return e.key !== key;
      });
      entries.unshift({ key: key, params: params, unread: true, at: Date.now() });
      renderCentre();
      var header = params.header !== undefined && params.header !== null && params.header !== '' ? params.header : H.escapeHtml('Call' + (params.from ? ': ' + params.from : ''));
      var node = popup('completed_call', header, params.text, [dateLine(params.date)]);
      if (element) {
        node.setAttribute('data-element-id', String(element.id));
      }
    },

    show_message: function (params) {
      record('show_message', params);
      params = params || {};
      popup('message', params.header, params.text);
    },

    show_message_error: function (params) {
      record('show_message_error', params);
      params = params || {};
      var extra = null;
      if (params.link) {
        var url = H.safeUrl(String(params.link));
        extra = url
          ? el('a', { class: 'notification-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, [String(params.link)])
          : el('div', { class: 'notification-link' }, [String(params.link)]);
      }
      popup('error', params.header, params.text, extra);
    }
  };
})();
