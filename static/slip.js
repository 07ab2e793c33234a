// The 80 mm slip page: after "Record and print slip" (?print=1) it opens the print dialog at
// once (Enter prints; Chrome started with --kiosk-printing prints without asking), then goes back
// to the member search, ready for the next person in the queue.
(function () {
  var body = document.body;
  var again = document.getElementById('print-slip');
  if (again) again.addEventListener('click', function () { window.print(); });
  if (body.dataset.autoprint !== '1') return;
  window.addEventListener('afterprint', function () { window.location.href = body.dataset.next || '/members'; });
  window.addEventListener('load', function () { window.print(); });
})();
