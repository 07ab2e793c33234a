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
