/*
 * Kommo's modal helper, as the RequireJS module 'lib/components/base/modal':
 *
 *   require(['lib/components/base/modal'], function (Modal) {
 *     var modal = new Modal({
 *       class_name: 'my-modal',
 *       init: function ($modal_body) { $modal_body.append(...); },
 *       destroy: function () { ... }   // called when the modal closes
 *     });
 *     modal.destroy();                 // close it from code
 *   });
 *
 * Documented: the constructor options and .destroy(). Kommo's markup is not
 * documented; what follows is a stand-in (root `.modal.<class_name>`, body
 * `.modal-body`, close button `.modal-body__close`). Widgets conventionally
 * trigger 'modal:loaded' and 'modal:centrify' on the body; those are accepted
 * and need nothing here. The Escape key and the close button close the
 * topmost modal. Whether Kommo lets the `destroy` option veto closing is
 * unconfirmed; here it cannot.
 *
 * DOM hooks: .modal[data-modal-id] > .modal-overlay + .modal-scroller > .modal-body,
 *            .modal-body__close
 */
define('lib/components/base/modal', ['jquery'], function ($) {
  'use strict';

  var open = []; // the stack of open modals, topmost last
  var seq = 0;

  $(document).on('keydown.callcard-host-modal', function (ev) {
    if (ev.key === 'Escape' && open.length) {
      ev.preventDefault();
      open[open.length - 1].destroy();
    }
  });

  function Modal(options) {
    var self = this;
    this.options = $.extend({ class_name: '', init: $.noop, destroy: $.noop }, options);
    this.destroyed = false;
    this.id = ++seq;

    this.$modal = $('<div class="modal" role="dialog" aria-modal="true"></div>')
      .addClass(this.options.class_name || '')
      .attr('data-modal-id', this.id);
    var $overlay = $('<div class="modal-overlay"></div>');
    var $scroller = $('<div class="modal-scroller"></div>');
    this.$body = $('<div class="modal-body"></div>');
    var $close = $('<button type="button" class="modal-body__close" title="Close" aria-label="Close">×</button>');
    $close.on('click', function () {
      self.destroy();
    });
    this.$body.append($close);
    $scroller.append(this.$body);
    this.$modal.append($overlay, $scroller).appendTo(document.body);
    $(document.body).addClass('modal-open');
    open.push(this);

    try {
      this.options.init.call(this, this.$body);
    } catch (err) {
      if (window.console) {
        console.error('modal init failed', err);
      }
    }
  }

  Modal.prototype.destroy = function () {
    if (this.destroyed) {
      return;
    }
    this.destroyed = true;
    var i = open.indexOf(this);
    if (i >= 0) {
      open.splice(i, 1);
    }
    try {
      this.options.destroy.call(this);
    } catch (err) {
      if (window.console) {
        console.error('modal destroy callback failed', err);
      }
    }
    this.$modal.remove();
    if (!open.length) {
      $(document.body).removeClass('modal-open');
    }
  };

  return Modal;
});
