// Draws the analytics charts from the JSON the page carries (#chart-data): the same numbers as
// the tables beside them. Chart.js is vendored (static/vendor); no inline script (CSP).
(function () {
  var source = document.getElementById('chart-data');
  if (!source || !window.Chart) return;
  var data = JSON.parse(source.textContent);
  var palette = ['#0f6b4f', '#1d3f8f', '#d08a1a', '#7a3e9d', '#2a9d8f', '#b3261e', '#5d6b63'];
  // One colour per method in every chart and every view (the server names them): a method keeps
  // its colour whichever methods a period happens to have.
  var colours = data.colours || {};
  var colourOf = function (method, i) { return colours[method] || palette[i % palette.length]; };
  var num = function (values) { return values.map(Number); };
  var kes = function (v) { return 'KES ' + Number(v).toLocaleString('en-KE', {maximumFractionDigits: 0}); };
  var pct = function (v) { return v + '%'; };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;  // instant: managers read numbers, they do not watch them grow

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, config);
  }
  function bars(id, block, format, horizontal, byMethod) {
    var fill = byMethod ? block.labels.map(colourOf) : palette[0];
    draw(id, {type: 'bar', data: {labels: block.labels, datasets: [{data: num(block.values), backgroundColor: fill}]},
      options: {indexAxis: horizontal ? 'y' : 'x', maintainAspectRatio: false, plugins: {legend: {display: false},
        tooltip: {callbacks: {label: function (c) { return format(horizontal ? c.parsed.x : c.parsed.y); }}}},
        scales: horizontal ? {x: {min: 0, max: format === pct ? 100 : undefined, ticks: {callback: format}}}
                           : {y: {min: 0, ticks: {callback: format}}}}});
  }

  var rev = data.revenue;
  var sets = Object.keys(rev.methods).map(function (m, i) {
    return {type: 'bar', label: m, data: num(rev.methods[m]), backgroundColor: colourOf(m, i), stack: 'in'};
  });
  sets.push({type: 'bar', label: 'refunds', data: num(rev.refunds), backgroundColor: '#e6a19c', stack: 'in'});
  sets.push({type: 'line', label: 'net', data: num(rev.net), borderColor: '#1d2521', backgroundColor: '#1d2521', pointRadius: 2, tension: 0.2});
  draw('chart-revenue', {data: {labels: rev.labels, datasets: sets}, options: {maintainAspectRatio: false,
    interaction: {mode: 'index', intersect: false}, scales: {x: {stacked: true}, y: {stacked: true, ticks: {callback: kes}}},
    plugins: {tooltip: {callbacks: {label: function (c) { return c.dataset.label + ': ' + kes(c.parsed.y); }}}}}});

  draw('chart-methods', {type: 'doughnut', data: {labels: data.methods.labels,
    datasets: [{data: num(data.methods.values), backgroundColor: data.methods.labels.map(colourOf)}]},
    options: {maintainAspectRatio: false, plugins: {tooltip: {callbacks: {label: function (c) { return c.label + ': ' + kes(c.parsed); }}}}}});
  bars('chart-success', data.success, pct, true, true);
  bars('chart-collection', data.collection, pct, true, true);
  bars('chart-collection-staff', data.collection_staff, pct, true);
  bars('chart-aging', data.aging, kes, false);
})();
