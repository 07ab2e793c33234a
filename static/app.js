// Front-desk keyboard: "/" jumps to the member search; arrow keys walk the results; Enter opens.
(function () {
  function resultLinks() { return Array.from(document.querySelectorAll('#results a.row-link')); }
  document.addEventListener('keydown', function (e) {
    var target = e.target;
    var typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT');
    if (e.key === '/' && !typing) {
      var search = document.getElementById('member-search');
      if (search) { e.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    var links = resultLinks();
    if (!links.length) return;
    var index = links.indexOf(document.activeElement);
    if (target && target.id === 'member-search') {
      if (e.key === 'ArrowDown') { e.preventDefault(); links[0].focus(); }
      return;
    }
    if (index === -1) return;
    e.preventDefault();
    if (e.key === 'ArrowDown' && index < links.length - 1) links[index + 1].focus();
    if (e.key === 'ArrowUp') {
      if (index === 0) document.getElementById('member-search').focus();
      else links[index - 1].focus();
    }
  });
})();

// Enter in the member search leaves for /members/go: the live search must not answer meanwhile (its
// history push would cancel the page being opened), so its requests stop and late answers are dropped.
document.addEventListener('submit', function (e) {
  var form = e.target;
  if (form.getAttribute('role') !== 'search') return;
  form.dataset.leaving = '1';
  form.querySelectorAll('[hx-get]').forEach(function (el) { if (window.htmx) htmx.trigger(el, 'htmx:abort'); });
}, true);
function leavingSearch(e) { return e.target.closest && e.target.closest('form[data-leaving]'); }
document.addEventListener('htmx:beforeRequest', function (e) { if (leavingSearch(e)) e.preventDefault(); });
document.addEventListener('htmx:beforeSwap', function (e) { if (leavingSearch(e)) e.detail.shouldSwap = false; });

// Arriving at a member's payment form (from the search: name, Enter): the amount owed is there and
// selected, so Enter records it or typing replaces it.
// (On load, once the browser has moved to #pay: focus given at DOMContentLoaded did not hold in Chromium.)
window.addEventListener('load', function () {
  if (location.hash !== '#pay') return;
  var amount = document.getElementById('f-amount');
  if (amount) { amount.focus(); amount.select(); }
});

// A form that starts something (a payment, a refund) submits once: the button is disabled on
// submit, so a double click cannot send it twice (the server's idempotency key is the backstop).
document.addEventListener('submit', function (e) {
  var form = e.target;
  var button = form.querySelector('button[data-once], button[type=submit][data-once]');
  if (!button) return;
  if (form.dataset.submitting === '1') { e.preventDefault(); return; }
  form.dataset.submitting = '1';
  setTimeout(function () { button.disabled = true; button.setAttribute('aria-busy', 'true'); }, 0);
});
// Coming back with the Back button shows the form usable again.
window.addEventListener('pageshow', function () {
  document.querySelectorAll('form[data-leaving]').forEach(function (form) { delete form.dataset.leaving; });
  document.querySelectorAll('form[data-submitting]').forEach(function (form) {
    delete form.dataset.submitting;
    form.querySelectorAll('button[data-once]').forEach(function (b) { b.disabled = false; b.removeAttribute('aria-busy'); });
  });
});

// The menu's "More": Escape or a click elsewhere closes it (a <details>, so it opens by keyboard too).
document.addEventListener('click', function (e) {
  document.querySelectorAll('details.nav-more[open]').forEach(function (d) { if (!d.contains(e.target)) d.open = false; });
});
document.addEventListener('keydown', function (e) {
  if (e.key !== 'Escape') return;
  document.querySelectorAll('details.nav-more[open]').forEach(function (d) { d.open = false; d.querySelector('summary').focus(); });
});

// "Copy" buttons (pay links): the text to copy is in data-copy; the button says when it is done.
document.addEventListener('click', function (e) {
  var button = e.target.closest && e.target.closest('[data-copy]');
  if (!button) return;
  var text = button.getAttribute('data-copy');
  var done = function () { var label = button.textContent; button.textContent = 'Copied'; setTimeout(function () { button.textContent = label; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done); return; }
  var field = document.createElement('textarea');  // plain-http intranet: the old way
  field.value = text; document.body.appendChild(field); field.select();
  try { document.execCommand('copy'); done(); } finally { field.remove(); }
});
