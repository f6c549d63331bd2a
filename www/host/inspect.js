/*
 * "Inspect Kommo": what the sandbox Kommo now holds, from GET /sandbox/inspect
 * (entities with their notes, calls, tasks and links, and incoming leads).
 *
 * The exact shape of /sandbox/inspect is owned by the sandbox; this view
 * renders it generically but readably:
 *   - an array of entities, or {entities: [...]} / {entities: {leads: [...], ...}},
 *     or top-level collections ({leads: [...], contacts: [...], ...}) become
 *     entity cards; nested arrays/objects (notes, calls, tasks, links, ...)
 *     become titled sections inside the card;
 *   - anything else is shown as a key/value tree.
 * All text is inserted with textContent; links only when http(s).
 *
 * DOM hooks: #view.inspect-view (inspect.html), #inspect-refresh, #inspect-auto (checkbox),
 *   #inspect-updated, #inspect-error, #inspect-content,
 *   .inspect-group[data-key=<top-level key>],
 *   .inspect-entity[data-entity-type][data-entity-id] (element id "<type>-<id>",
 *     the target of the notification centre's element links),
 *   .inspect-section[data-key=notes|calls|tasks|links|...] .inspect-item,
 *   #inspect-raw (the raw JSON, in a <details>).
 */
(function () {
  'use strict';

  var H = window.CallcardHost;
  var el = H.el;
  var ENDPOINT = '/sandbox/inspect';
  var MAX_DEPTH = 6;

  var ui = {};
  var timer = null;
  var lastText = null;
  var firstRender = true;

  function isPlainObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  function singular(key) {
    var k = String(key).toLowerCase();
    if (k === 'companies') {
      return 'company';
    }
    return k.replace(/s$/, '');
  }

  // Unix seconds or milliseconds in *_at / date-like keys also get a date.
  function timeHint(key, v) {
    if (typeof v !== 'number' || !/(_at|_till|date|time)$/i.test(key)) {
      return null;
    }
    if (v < 1e9 || v > 1e13) {
      return null;
    }
    var d = new Date(v < 1e12 ? v * 1000 : v);
    return el('span', { class: 'inspect-time' }, [' (' + H.formatTime(d) + ')']);
  }

  function scalar(key, v) {
    if (v === null || v === undefined) {
      return el('span', { class: 'inspect-null' }, ['—']);
    }
    if (typeof v === 'string') {
      var url = /^https?:\/\//i.test(v) ? H.safeUrl(v) : null;
      if (url) {
        return el('a', { class: 'inspect-url', href: url, target: '_blank', rel: 'noopener noreferrer' }, [v]);
      }
      return el('span', { class: 'inspect-string' }, [v]);
    }
    return el('span', { class: 'inspect-' + typeof v }, [String(v), timeHint(key, v)]);
  }

  function value(key, v, depth) {
    if (!isPlainObject(v) && !Array.isArray(v)) {
      return scalar(key, v);
    }
    if (depth >= MAX_DEPTH) {
      return el('pre', { class: 'inspect-json' }, [JSON.stringify(v, null, 2)]);
    }
    if (Array.isArray(v)) {
      if (!v.length) {
        return el('span', { class: 'inspect-null' }, ['(none)']);
      }
      if (v.every(function (x) { return !isPlainObject(x) && !Array.isArray(x); })) {
        return el('span', { class: 'inspect-list' }, v.map(function (x, i) {
          return el('span', { class: 'inspect-list-item' }, [i ? ', ' : '', scalar(key, x)]);
        }));
      }
      return el('div', { class: 'inspect-items' }, v.map(function (x, i) {
        return el('div', { class: 'inspect-item', 'data-index': i }, [value(key, x, depth + 1)]);
      }));
    }
    return dl(v, depth);
  }

  function dl(obj, depth) {
    var list = el('dl', { class: 'inspect-fields' });
    Object.keys(obj).forEach(function (k) {
      H.append(list, [el('dt', {}, [k]), el('dd', {}, [value(k, obj[k], depth + 1)])]);
    });
    return list;
  }

  function entityTitle(type, e) {
    var name = e.name || e.title || e.text || '';
    return (type ? type.charAt(0).toUpperCase() + type.slice(1) : 'Record') + (e.id !== undefined ? ' #' + e.id : '') + (name && typeof name === 'string' ? ' — ' + name : '');
  }

  function entityCard(defaultType, e) {
    // entity_type first, then the collection it sits in, then `type`.
    var type = H.elementType(e.entity_type || defaultType || e.type || '');
    var card = el('article', {
      class: 'inspect-entity card',
      id: e.id !== undefined ? type + '-' + e.id : null,
      'data-entity-type': type || null,
      'data-entity-id': e.id !== undefined ? String(e.id) : null
    }, [el('h3', { class: 'inspect-entity-title' }, [entityTitle(type, e)])]);

    var flat = {};
    var nested = [];
    Object.keys(e).forEach(function (k) {
      // Objects and lists of records (notes, calls, tasks, links, ... even
      // when empty) get their own section; scalars and lists of scalars
      // (phones) stay in the field list.
      var v = e[k];
      if (isPlainObject(v) || (Array.isArray(v) && (v.length === 0 || v.some(function (x) { return x !== null && typeof x === 'object'; })))) {
        nested.push(k);
      } else {
        flat[k] = e[k];
      }
    });
    card.appendChild(dl(flat, 1));
    nested.forEach(function (k) {
      var v = e[k];
      var count = Array.isArray(v) ? ' (' + v.length + ')' : '';
      card.appendChild(el('section', { class: 'inspect-section', 'data-key': k }, [el('h4', {}, [k + count]), value(k, v, 1)]));
    });
    return card;
  }

  function looksLikeEntities(arr) {
    return Array.isArray(arr) && arr.length > 0 && arr.every(function (x) {
      return isPlainObject(x) && x.id !== undefined;
    });
  }

  function group(key, v) {
    var items = Array.isArray(v) ? v : null;
    var box = el('section', { class: 'inspect-group', 'data-key': key }, [el('h2', { class: 'inspect-group-title' }, [key + (items ? ' (' + items.length + ')' : '')])]);
    if (looksLikeEntities(items)) {
      items.forEach(function (e) {
        box.appendChild(entityCard(key === 'entities' ? '' : singular(key), e));
      });
    } else if (isPlainObject(v) && Object.keys(v).every(function (k) { return looksLikeEntities(v[k]) || (Array.isArray(v[k]) && !v[k].length); })) {
      // {leads: [...], contacts: [...]}
      Object.keys(v).forEach(function (k) {
        box.appendChild(group(k, v[k]));
      });
    } else {
      box.appendChild(el('div', { class: 'card' }, [value(key, v, 0)]));
    }
    return box;
  }

  function render(data) {
    var content = H.clear(ui.content);
    if (Array.isArray(data)) {
      content.appendChild(group('entities', data));
    } else if (isPlainObject(data)) {
      Object.keys(data).forEach(function (k) {
        content.appendChild(group(k, data[k]));
      });
      if (!Object.keys(data).length) {
        content.appendChild(el('p', {}, ['The sandbox holds nothing yet.']));
      }
    } else {
      content.appendChild(el('div', { class: 'card' }, [scalar('', data)]));
    }
    ui.raw.textContent = JSON.stringify(data, null, 2);
    if (firstRender) {
      firstRender = false;
      highlightHash();
    }
  }

  function highlightHash() {
    var id = decodeURIComponent(window.location.hash.replace(/^#/, ''));
    if (!id) {
      return;
    }
    var target = document.getElementById(id);
    if (target) {
      target.classList.add('inspect-highlight');
      target.scrollIntoView({ block: 'start' });
    }
  }

  function refresh() {
    return H.fetchJSON('GET', ENDPOINT).then(
      function (data) {
        ui.error.hidden = true;
        ui.error.textContent = '';
        ui.updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
        var text = JSON.stringify(data);
        if (text !== lastText) {
          // Re-render only on change, so auto-refresh does not jump around.
          lastText = text;
          render(data);
        }
      },
      function (err) {
        ui.error.textContent = 'Could not read the sandbox: ' + err.message;
        ui.error.hidden = false;
      }
    );
  }

  H.mountInspect = function (container) {
    ui.refresh = el('button', { type: 'button', id: 'inspect-refresh', class: 'button button-primary', onclick: refresh }, ['Refresh']);
    ui.auto = el('input', { type: 'checkbox', id: 'inspect-auto', checked: true });
    ui.updated = el('span', { id: 'inspect-updated', class: 'inspect-updated' });
    ui.error = el('div', { id: 'inspect-error', class: 'host-banner host-banner-error', role: 'alert', hidden: true });
    ui.content = el('div', { id: 'inspect-content', class: 'inspect-content' });
    ui.raw = el('pre', { id: 'inspect-raw', class: 'inspect-json' });

    H.append(H.clear(container), [
      el('div', { class: 'card inspect-toolbar' }, [
        el('div', { class: 'card-head' }, [
          el('h2', {}, ['Inspect Kommo']),
          el('p', { class: 'card-hint' }, ['What the sandbox Kommo holds now: entities with their notes, calls, tasks and links, and incoming leads.'])
        ]),
        el('div', { class: 'inspect-controls' }, [
          ui.refresh,
          el('label', { class: 'inspect-auto-label' }, [ui.auto, ' refresh every 3 s']),
          ui.updated
        ])
      ]),
      ui.error,
      ui.content,
      el('details', { class: 'card inspect-raw-box' }, [el('summary', {}, ['Raw JSON']), ui.raw])
    ]);

    var tick = function () {
      if (ui.auto.checked && !document.hidden) {
        refresh();
      }
    };
    clearInterval(timer);
    timer = setInterval(tick, 3000);
    window.addEventListener('hashchange', highlightHash);
    return refresh();
  };
})();
