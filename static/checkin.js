// The door, one key away: F2 opens check-in from any page (even while typing in a field), and on
// the check-in page puts the cursor back in the number field. After each answer the field is
// emptied and focused again, so the next card can be scanned at once (a scanner types the number
// and Enter).
document.addEventListener('keydown', function (e) {
  if (e.key !== 'F2' || e.altKey || e.ctrlKey || e.metaKey) return;
  e.preventDefault();
  var field = document.getElementById('checkin-q');
  if (field) { field.focus(); field.select(); } else { window.location.assign('/checkin'); }
});
document.addEventListener('htmx:afterRequest', function (e) {
  var field = document.getElementById('checkin-q');
  var path = (e.detail.pathInfo && e.detail.pathInfo.requestPath) || '';
  if (!field || path.indexOf('/checkin') !== 0) return;  // not the menu's badges polling
  if (e.detail.elt && e.detail.elt.id === 'checkin-form') field.value = '';
  // A refused override keeps its reason field in focus to correct; anything else goes back to the number.
  var error = document.querySelector('#checkin-answer [data-testid="error-override"]');
  if (error) { document.getElementById('f-override').focus(); } else { field.focus(); }
});
// Print buttons (the member card): no inline script, the CSP stays strict.
document.addEventListener('click', function (e) {
  if (e.target.closest && e.target.closest('[data-print]')) window.print();
});
