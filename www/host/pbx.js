/*
 * The "PBX" panel: the demo's control surface. It drives the demo's PBX
 * simulator, which fills in times, duration and the recording URL, signs the
 * webhook and posts it to the backend:
 *
 *   POST /pbx-simulator/events
 *   {"event": "ringing"|"answered"|"transferred"|"ended"|"recording_ready"|"resend",
 *    "call_id": "<from the ringing answer; omitted on ringing>",
 *    "direction": "inbound"|"outbound", "external_number": "...",
 *    "extension": "..." ("101, 102" rings a group; "" routes an inbound call),
 *    "agent": "<answering / transfer target>",
 *    "outcome": "answered"|"missed"|"busy"|"failed"|"no_answer" (ended only;
 *               omitted: as the call went, answered or missed)}
 *   -> {"call_id": "...", "status": "...", "outcome"?: "...",
 *       "routing"?: {"route": {"extension", "user_id", "record", "reason"} | null,
 *                    "rang": ["102"], "fallback": "<why the default group rang>" | null}}
 *
 * *Ring* with the extension left empty (or "Route to the responsible
 * manager" picked) lets the simulator route the inbound call as a PBX using
 * callcard does: it asks the backend's GET /pbx/{account}/route and rings the
 * responsible manager's extension, else its default group (every user's
 * extension); the panel says which, and why. *Ring group* rings every user's
 * extension with one call; *Transfer* rings the agent field's extension for
 * the selected (answered) call, and the next *Answer* completes it; *Hang up*
 * ends the call as it went unless an outcome is picked (a call never
 * answered is missed); a row's *Resend* delivers the call's last webhook
 * again, as a PBX retrying; *Call number* plays Kommo's click on a phone
 * number (the widget's `phone` action: the backend asks the simulator to
 * originate), and the call it places joins the list from GET
 * /pbx-simulator/calls.
 *
 * Every event repeats the call's direction, number and extension as they
 * were when it rang (the webhook contract wants each event to stand alone).
 * The calls placed here are kept in sessionStorage so switching users
 * (a page reload) keeps them.
 *
 * DOM hooks: #pbx-panel, #pbx-external-number, #pbx-extension (text),
 *   #pbx-extension-pick (select of users' extensions), #pbx-direction,
 *   #pbx-outcome, #pbx-ring, #pbx-ring-group, #pbx-answer, #pbx-hangup, #pbx-recording,
 *   #pbx-agent (answer as / transfer to), #pbx-transfer, #pbx-originate,
 *   #pbx-clear, #pbx-error (role=alert, [hidden] when empty),
 *   #pbx-routing[data-routed=extension|fallback] (role=status, [hidden] when empty),
 *   #pbx-calls tbody tr.pbx-call[data-call-id][data-state][aria-selected]
 *     (.pbx-call-id .pbx-call-direction .pbx-call-number .pbx-call-extension
 *      .pbx-call-state .pbx-call-status; row buttons .pbx-row-answer
 *      .pbx-row-transfer .pbx-row-hangup .pbx-row-resend .pbx-row-recording),
 *   #pbx-log li.pbx-log-entry(.pbx-log-error).
 */
(function () {
  'use strict';

  var H = window.CallcardHost;
  var el = H.el;
  var ENDPOINT = '/pbx-simulator/events';
  var CALLS = '/pbx-simulator/calls';
  var STORE = 'callcard.pbx.calls';
  var DEFAULT_NUMBER = '+1 830 570 3077';
  var OUTCOMES = ['answered', 'missed', 'busy', 'failed', 'no_answer'];
  var ROUTE = 'route'; // the extension picker's "Route to the responsible manager"

  var calls = load(); // newest first: {call_id, direction, external_number, extension, state, status, at}
  var selected = calls.length ? calls[0].call_id : null;
  var busy = false;
  var ui = {};
  var userList = [];

  function load() {
    try {
      var v = JSON.parse(window.sessionStorage.getItem(STORE) || '[]');
      return Array.isArray(v) ? v : [];
    } catch (e) {
      return [];
    }
  }

  function save() {
    try {
      window.sessionStorage.setItem(STORE, JSON.stringify(calls.slice(0, 50)));
    } catch (e) {
      // Private mode etc.: the list just will not survive a reload.
    }
  }

  function find(id) {
    for (var i = 0; i < calls.length; i++) {
      if (calls[i].call_id === id) {
        return calls[i];
      }
    }
    return null;
  }

  function showError(text) {
    ui.error.textContent = text || '';
    ui.error.hidden = !text;
  }

  function logLine(text, isError) {
    var now = new Date();
    ui.log.insertBefore(
      el('li', { class: 'pbx-log-entry' + (isError ? ' pbx-log-error' : '') }, [
        el('time', { datetime: now.toISOString() }, [now.toLocaleTimeString()]),
        ' ',
        text
      ]),
      ui.log.firstChild
    );
    while (ui.log.children.length > 30) {
      ui.log.removeChild(ui.log.lastChild);
    }
  }

  // What routing did with a call rung without an extension, in words.
  function showRouting(routing) {
    if (!routing) {
      ui.routing.textContent = '';
      ui.routing.hidden = true;
      ui.routing.removeAttribute('data-routed');
      return;
    }
    var route = routing.route || {};
    var rang = (routing.rang || []).join(', ');
    var text;
    if (routing.fallback) {
      text = 'No responsible manager to ring: ' + routing.fallback + '. Rang the default group ' + rang + '.';
    } else {
      var who = userList.filter(function (u) { return u.id === route.user_id; })[0];
      var record = route.record ? ' of ' + route.record.kind + ' #' + route.record.id : '';
      text = 'Routed to ' + rang + (who ? ' (' + who.name + ')' : '') + ', the responsible manager' + record + '.';
    }
    ui.routing.textContent = text;
    ui.routing.hidden = false;
    ui.routing.setAttribute('data-routed', routing.fallback ? 'fallback' : 'extension');
  }

  function stateAfter(event, outcome) {
    switch (event) {
      case 'ringing':
        return 'ringing';
      case 'answered':
        return 'answered';
      case 'ended':
        return outcome ? 'ended (' + outcome + ')' : 'ended';
      case 'recording_ready':
        return 'recording delivered';
      case 'transferred':
        return 'transferring';
      default:
        return event;
    }
  }

  function setBusy(b) {
    busy = b;
    ui.panel.setAttribute('aria-busy', b ? 'true' : 'false');
    ui.panel.querySelectorAll('button').forEach(function (btn) {
      btn.disabled = b;
    });
  }

  // Sends one event; `call` is null for a new (ringing) call.
  function send(event, call) {
    if (busy) {
      return;
    }
    showError('');
    var body;
    if (call) {
      body = { event: event, call_id: call.call_id, direction: call.direction, external_number: call.external_number, extension: call.extension };
    } else {
      body = { event: event, direction: ui.direction.value, external_number: ui.number.value.trim(), extension: ui.extension.value.trim() };
      if (!body.external_number) {
        showError('Enter an external number first.');
        return;
      }
      if (!body.extension && body.direction !== 'inbound') {
        showError('Enter the extension the outbound call is made from (only inbound calls are routed).');
        return;
      }
      showRouting(null);
    }
    if (event === 'ended' && ui.outcome.value) {
      body.outcome = ui.outcome.value;
    }
    var agent = ui.agent.value.trim();
    if ((event === 'answered' || event === 'transferred') && agent) {
      body.agent = agent;
    }
    if (event === 'transferred' && !agent) {
      showError('Enter the extension to transfer to in "Agent" first.');
      return;
    }
    setBusy(true);
    H.fetchJSON('POST', ENDPOINT, body)
      .then(
        function (answer) {
          var id = answer && answer.call_id !== undefined && answer.call_id !== null ? String(answer.call_id) : call && call.call_id;
          var status = answer && answer.status !== undefined ? String(answer.status) : '';
          if (!id) {
            throw new Error('The PBX simulator answered without a call_id: ' + JSON.stringify(answer));
          }
          var c = call || find(id);
          var routing = answer && answer.routing;
          if (!c) {
            var rang = routing && routing.rang ? routing.rang.join(', ') : body.extension;
            c = { call_id: id, direction: body.direction, external_number: body.external_number, extension: rang, at: Date.now() };
            calls.unshift(c);
          }
          if (event !== 'resend') {
            c.state = stateAfter(event, answer && answer.outcome) + (event === 'transferred' ? ' to ' + agent : '');
            c.event = event;
          }
          if (event === 'answered' && agent) {
            c.extension = agent;
          }
          c.status = status;
          selected = id;
          save();
          render();
          if (routing) {
            showRouting(routing);
          }
          logLine(event + ' ' + id + (status ? ' → ' + status : '') + (routing ? ' (rang ' + c.extension + ')' : ''), false);
        },
        function (err) {
          var text = 'The PBX simulator refused "' + event + '"' + (call ? ' for call ' + call.call_id : '') + ': ' + err.message;
          if (call) {
            call.status = 'error: ' + err.message;
            save();
            render();
          }
          throw new Error(text);
        }
      )
      .then(null, function (err) {
        showError(err.message);
        logLine(err.message, true);
      })
      .then(function () {
        setBusy(false);
      });
  }

  function onSelected(event) {
    var call = find(selected);
    if (!call) {
      showError('Ring a call first (or pick one in the list below).');
      return;
    }
    send(event, call);
  }

  // Calls the panel did not place (click-to-call) join the list.
  function adopt(list) {
    var added = 0;
    (list || []).forEach(function (s) {
      if (!find(s.call_id)) {
        calls.unshift({ call_id: s.call_id, direction: s.direction, external_number: s.external_number, extension: s.extension, state: s.state, event: 'ringing', status: 'originated', at: Date.now() });
        selected = s.call_id;
        added += 1;
      }
    });
    if (added) {
      save();
      render();
    }
    return added;
  }

  // Kommo's click on a phone number, as the widget's `phone` action gets it.
  function originate() {
    showError('');
    var number = ui.number.value.trim();
    if (!number) {
      showError('Enter the number to call first.');
      return;
    }
    try {
      H.triggerAction('phone', { value: number });
    } catch (e) {
      showError('The widget has no phone action: ' + e.message);
      return;
    }
    logLine('clicked ' + number + ' (click-to-call)', false);
    var tries = 0;
    var poll = function () {
      H.fetchJSON('GET', CALLS).then(function (list) {
        if (!adopt(list) && ++tries < 20) {
          setTimeout(poll, 500);
        }
      }, function (err) {
        logLine('could not list the simulator\u2019s calls: ' + err.message, true);
      });
    };
    setTimeout(poll, 300);
  }

  function ringGroup(users) {
    var exts = users.filter(function (u) { return u.extension; }).map(function (u) { return u.extension; });
    ui.extension.value = exts.join(', ');
    send('ringing', null);
  }

  function render() {
    var tbody = H.clear(ui.tbody);
    ui.empty.hidden = calls.length > 0;
    calls.forEach(function (c) {
      var isSel = c.call_id === selected;
      var row = el('tr', { class: 'pbx-call' + (isSel ? ' pbx-call-selected' : ''), 'data-call-id': c.call_id, 'data-state': c.event || '', 'aria-selected': isSel ? 'true' : 'false' }, [
        el('td', {}, [el('input', { type: 'radio', name: 'pbx-call-select', class: 'pbx-call-select', 'aria-label': 'Select call ' + c.call_id, checked: isSel })]),
        el('td', { class: 'pbx-call-id', title: c.call_id }, [c.call_id]),
        el('td', { class: 'pbx-call-direction' }, [c.direction]),
        el('td', { class: 'pbx-call-number' }, [c.external_number]),
        el('td', { class: 'pbx-call-extension' }, [c.extension]),
        el('td', { class: 'pbx-call-state' }, [c.state || '']),
        el('td', { class: 'pbx-call-status' }, [c.status || '']),
        el('td', { class: 'pbx-call-actions' }, [el('div', { class: 'pbx-row-buttons' }, [
          el('button', { type: 'button', class: 'button button-small pbx-row-answer', onclick: function (ev) { ev.stopPropagation(); send('answered', c); } }, ['Answer']),
          el('button', { type: 'button', class: 'button button-small pbx-row-transfer', onclick: function (ev) { ev.stopPropagation(); send('transferred', c); } }, ['Transfer']),
          el('button', { type: 'button', class: 'button button-small pbx-row-hangup', onclick: function (ev) { ev.stopPropagation(); send('ended', c); } }, ['Hang up']),
          el('button', { type: 'button', class: 'button button-small pbx-row-resend', title: 'Deliver this call\u2019s last webhook again, as a PBX retrying', onclick: function (ev) { ev.stopPropagation(); send('resend', c); } }, ['Resend']),
          el('button', { type: 'button', class: 'button button-small pbx-row-recording', onclick: function (ev) { ev.stopPropagation(); send('recording_ready', c); } }, ['Recording'])
        ])])
      ]);
      row.addEventListener('click', function () {
        selected = c.call_id;
        render();
      });
      tbody.appendChild(row);
    });
    ui.selectedLabel.textContent = selected ? 'Acting on call ' + selected : 'No call yet';
  }

  // users: [{id, name, extension}], current: the current user or null.
  H.mountPbx = function (container, users, current) {
    userList = users;
    var options = [
      el('option', { value: '' }, ['Pick a user\u2019s extension…']),
      el('option', { value: ROUTE }, ['Route to the responsible manager'])
    ];
    users.forEach(function (u) {
      if (u.extension) {
        options.push(el('option', { value: u.extension }, [u.extension + ' — ' + u.name]));
      }
    });
    var defaultExt = (current && current.extension) || (users.filter(function (u) { return u.extension; })[0] || {}).extension || '';

    ui.number = el('input', { id: 'pbx-external-number', type: 'tel', value: DEFAULT_NUMBER, autocomplete: 'off' });
    ui.extension = el('input', { id: 'pbx-extension', type: 'text', value: defaultExt, autocomplete: 'off', placeholder: 'routed', title: 'Empty: the PBX asks callcard for the responsible manager' });
    ui.pick = el('select', { id: 'pbx-extension-pick', 'aria-label': 'Users\u2019 extensions' }, options);
    ui.pick.addEventListener('change', function () {
      if (ui.pick.value === ROUTE) {
        ui.extension.value = '';
        ui.direction.value = 'inbound';
      } else if (ui.pick.value) {
        ui.extension.value = ui.pick.value;
      }
    });
    ui.agent = el('input', { id: 'pbx-agent', type: 'text', value: '', autocomplete: 'off', placeholder: 'e.g. 102' });
    ui.direction = el('select', { id: 'pbx-direction' }, [el('option', { value: 'inbound' }, ['inbound']), el('option', { value: 'outbound' }, ['outbound'])]);
    ui.outcome = el('select', { id: 'pbx-outcome', 'aria-label': 'Outcome' }, [el('option', { value: '' }, ['as it went'])].concat(OUTCOMES.map(function (o) {
      return el('option', { value: o }, [o]);
    })));
    ui.error = el('div', { id: 'pbx-error', class: 'pbx-error', role: 'alert', hidden: true });
    ui.routing = el('div', { id: 'pbx-routing', class: 'pbx-routing', role: 'status', hidden: true });
    ui.tbody = el('tbody');
    ui.empty = el('p', { class: 'pbx-empty' }, ['No calls yet: press Ring.']);
    ui.log = el('ol', { id: 'pbx-log', class: 'pbx-log', reversed: true });
    ui.selectedLabel = el('span', { class: 'pbx-selected' });

    var field = function (label, control, extra) {
      return el('label', { class: 'pbx-field' }, [el('span', { class: 'pbx-label' }, [label]), control, extra]);
    };

    ui.panel = H.clear(container);
    H.append(container, [
      el('div', { class: 'card-head' }, [
        el('h2', {}, ['PBX']),
        el('p', { class: 'card-hint' }, ['A pretend phone system: each button sends one event to the PBX simulator, which signs it and posts it to the callcard backend.'])
      ]),
      el('div', { class: 'pbx-form' }, [
        field('External number', ui.number),
        el('div', { class: 'pbx-field' }, [el('label', { class: 'pbx-label', for: 'pbx-extension' }, ['Extension']), el('div', { class: 'pbx-ext' }, [ui.extension, ui.pick])]),
        field('Direction', ui.direction),
        field('Agent (answers / transfer to)', ui.agent)
      ]),
      el('div', { class: 'pbx-buttons' }, [
        el('button', { type: 'button', id: 'pbx-ring', class: 'button button-primary', onclick: function () { send('ringing', null); } }, ['Ring']),
        el('button', { type: 'button', id: 'pbx-ring-group', class: 'button', title: 'Ring every user\u2019s extension with one call', onclick: function () { ringGroup(users); } }, ['Ring group']),
        el('button', { type: 'button', id: 'pbx-answer', class: 'button', onclick: function () { onSelected('answered'); } }, ['Answer']),
        el('button', { type: 'button', id: 'pbx-transfer', class: 'button', onclick: function () { onSelected('transferred'); } }, ['Transfer']),
        el('span', { class: 'pbx-hangup-group' }, [
          el('button', { type: 'button', id: 'pbx-hangup', class: 'button button-danger', onclick: function () { onSelected('ended'); } }, ['Hang up']),
          ui.outcome
        ]),
        el('button', { type: 'button', id: 'pbx-recording', class: 'button', onclick: function () { onSelected('recording_ready'); } }, ['Deliver recording']),
        el('button', { type: 'button', id: 'pbx-originate', class: 'button', title: 'Click the number as in Kommo: the widget\u2019s phone action (click-to-call)', onclick: originate }, ['Call number']),
        ui.selectedLabel
      ]),
      ui.error,
      ui.routing,
      el('table', { id: 'pbx-calls', class: 'pbx-calls' }, [
        el('thead', {}, [el('tr', {}, ['', 'Call', 'Direction', 'Number', 'Ext.', 'State', 'Simulator', ''].map(function (h) {
          return el('th', {}, [h]);
        }))]),
        ui.tbody
      ]),
      ui.empty,
      el('div', { class: 'pbx-foot' }, [
        el('details', { class: 'pbx-log-box' }, [el('summary', {}, ['Simulator log']), ui.log]),
        el('button', { type: 'button', id: 'pbx-clear', class: 'button button-small', onclick: function () {
          calls = [];
          selected = null;
          save();
          render();
          showError('');
          showRouting(null);
        } }, ['Clear list'])
      ])
    ]);
    render();
  };
})();
