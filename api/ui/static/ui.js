// SendLab pages: draw the plotly figures embedded as JSON, and run the power form.
(function () {
  "use strict";
  var config = {responsive: true, displaylogo: false};

  function drawFigures() {
    document.querySelectorAll("script.figure").forEach(function (node) {
      var figure = JSON.parse(node.textContent);
      var target = document.createElement("div");
      node.parentNode.appendChild(target);
      Plotly.newPlot(target, figure.data, figure.layout, config);
    });
  }

  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  function powerBody(form) {
    var body = {relative: form.relative.checked};
    ["baseline", "mde", "alpha", "power", "ratio"].forEach(function (name) {
      body[name] = parseFloat(form[name].value);
    });
    body.arms = parseInt(form.arms.value, 10);
    var daily = parseInt(form.daily.value, 10);
    if (!isNaN(daily)) { body.daily = daily; }
    return body;
  }

  function describeError(answer) {
    var detail = answer && answer.detail;
    if (Array.isArray(detail)) {
      return detail.map(function (d) { return (d.loc || []).slice(1).join(".") + ": " + d.msg; }).join("; ");
    }
    return detail || "no answer";
  }

  function post(url, body) {
    // the session cookie (HttpOnly) goes by itself; the CSRF token of the page goes with it
    var headers = {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()};
    return fetch(url, {method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); });
  }

  function fmt(n) { return n === null || n === undefined ? "n/a" : n.toLocaleString("en-US"); }

  // A number as people write it: 53,182 (never 5.318e+04); fractions to four significant digits.
  function human(v) {
    if (v === null || v === undefined) { return "n/a"; }
    if (typeof v === "boolean") { return v ? "yes" : "no"; }
    if (typeof v !== "number") { return String(v); }
    if (Number.isInteger(v)) { return v.toLocaleString("en-US"); }
    if (Math.abs(v) >= 1000) { return v.toLocaleString("en-US", {maximumFractionDigits: 0}); }
    if (Math.abs(v) >= 1) { return v.toLocaleString("en-US", {maximumFractionDigits: 3}); }
    return v.toLocaleString("en-US", {maximumSignificantDigits: 4});
  }

  // The request body of a calculator form: numbers, lists of numbers, checkboxes, choices; empty left out.
  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      if (el.type === "checkbox") { body[el.name] = el.checked; return; }
      var text = el.value.trim();
      if (text === "") { return; }
      if (el.dataset.list === "number") {
        body[el.name] = text.split(",").map(function (t) { return Number(t.trim()); });
      } else if (el.type === "number") {
        body[el.name] = Number(text);
      } else {
        body[el.name] = text;
      }
    });
    return body;
  }

  function answerTable(reply, keys) {
    var table = document.createElement("table");
    table.className = "t answer";
    keys.forEach(function (key) {
      var v = reply[key];
      var row = table.insertRow();
      var name = document.createElement("th");
      name.scope = "row";
      name.textContent = key.replace(/_/g, " ");
      row.appendChild(name);
      var cell = row.insertCell();
      cell.className = "r";
      cell.dataset.key = key;
      cell.textContent = Array.isArray(v) ? v.map(human).join(", ") : human(v);
    });
    return table;
  }

  // The answer of a calculator: the form's headline numbers (data-answer) first, the rest of the reply's
  // single numbers and short lists folded away, then the method line.
  function showAnswer(answer, reply, headline) {
    answer.innerHTML = "";
    var shown = headline.filter(function (k) { return k in reply; });
    var rest = Object.keys(reply).filter(function (key) {
      var v = reply[key];
      return key !== "method" && shown.indexOf(key) < 0 && !(Array.isArray(v) && v.length > 12) &&
        !(v !== null && typeof v === "object" && !Array.isArray(v));
    });
    answer.appendChild(answerTable(reply, shown));
    var details = document.createElement("details");
    details.className = "answer-details";
    var summary = document.createElement("summary");
    summary.textContent = "inputs and other numbers";
    details.appendChild(summary);
    details.appendChild(answerTable(reply, rest));
    answer.appendChild(details);
    if (reply.method) {
      var method = document.createElement("div");
      method.className = "muted method";
      method.textContent = reply.method;
      answer.appendChild(method);
    }
  }

  // ---- the calculators' charts: drawn from the calculator's JSON (and a power curve's, from the API) ----
  var BLUE = "#0072B2", VERMILLION = "#D55E00", GREY = "#666666";
  var LAYOUT = {height: 340, margin: {t: 50, b: 80}, plot_bgcolor: "white", hovermode: "closest",
                legend: {orientation: "h", y: -0.35}};

  function layout(title, xTitle, method, extra) {
    var out = Object.assign({}, LAYOUT, {title: {text: title},
      xaxis: {title: {text: xTitle + (method ? "<br><sup>" + method + "</sup>" : "")}}});
    return Object.assign(out, extra || {});
  }

  // A value named by "reply:key" or "body:key".
  function pick(spec, body, reply) {
    var parts = spec.split(":");
    return (parts[0] === "reply" ? reply : body)[parts[1]];
  }

  // The power-curve request that goes with a calculator's request: what it holds fixed, over n or the effect.
  function curveBody(body, over) {
    var out = Object.assign({}, body, {over: over});
    delete out.daily;
    if (over === "n") { delete out.n_per_arm; } else { delete out.mde; delete out.relative; }
    return out;
  }

  function curveFigure(curve, mark) {
    var overN = curve.over === "n";
    var data = [
      {type: "scatter", mode: "lines+markers", name: "power", x: curve.x, y: curve.power,
       line: {color: BLUE}, hovertemplate: (overN ? "%{x:,.0f} per arm" : "effect %{x:.4g}") +
         ": power %{y:.1%}<extra></extra>"},
      {type: "scatter", mode: "lines", name: "reaches " + human(curve.target_power * 100) + "%",
       x: [curve.x_at_target, curve.x_at_target], y: [0, curve.target_power],
       line: {color: GREY, dash: "dot"}, hoverinfo: "skip"},
      {type: "scatter", mode: "markers", name: mark.name, x: [mark.x], y: [mark.y],
       marker: {color: VERMILLION, size: 12, symbol: "diamond"},
       hovertemplate: mark.name + ": %{x:,.4~g}, power %{y:.1%}<extra></extra>"}
    ];
    var fixed = overN ? "effect " + human(curve.fixed_effect) : human(curve.fixed_n_per_arm) + " per arm";
    return {data: data, layout: layout("Power of a " + curve.metric + " test, " + fixed,
      overN ? "recipients in the control arm" : "absolute effect", curve.method,
      {yaxis: {title: {text: "power"}, range: [0, 1.02], tickformat: ".0%"},
       shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: curve.target_power, y1: curve.target_power,
                 line: {color: GREY, dash: "dash", width: 1}}]})};
  }

  function testThenSendFigure(r) {
    return {data: [
      {type: "scatter", mode: "lines", name: "expected conversions", x: r.shares, y: r.expected_by_share,
       line: {color: BLUE}, hovertemplate: "test %{x:.1%} of the list: %{y:,.0f} conversions<extra></extra>"},
      {type: "scatter", mode: "markers", name: "best: test " + human(r.test_share * 100) + "%",
       x: [r.test_share], y: [r.expected_conversions], marker: {color: VERMILLION, size: 12, symbol: "diamond"},
       hovertemplate: "test %{x:.1%}: %{y:,.0f} conversions<extra></extra>"},
      {type: "scatter", mode: "lines", name: "no test", x: [r.shares[0], r.shares[r.shares.length - 1]],
       y: [r.expected_conversions_without_test, r.expected_conversions_without_test],
       line: {color: GREY, dash: "dash"}, hovertemplate: "no test: %{y:,.0f} conversions<extra></extra>"}
    ], layout: layout("Test then send on a list of " + human(r.list_size), "share of the list in the test",
                      r.method, {xaxis: {tickformat: ".0%", title: {text: "share of the list in the test<br><sup>" +
                      r.method + "</sup>"}}, yaxis: {title: {text: "expected total conversions"}, tickformat: ",.0f"}})};
  }

  function sequentialFigure(r) {
    var scale = r.fixed_n || 1;
    var names = ["fixed sample", "sequential, at most", "sequential, expected under the effect"];
    var ys = [scale, scale * r.inflation, scale * r.expected_sample_ratio];
    return {data: [{type: "bar", x: names, y: ys, marker: {color: [GREY, VERMILLION, BLUE]},
                    text: ys.map(function (y) { return r.fixed_n ? human(Math.ceil(y)) : human(y) + "x"; }),
                    textposition: "outside", hovertemplate: "%{x}: %{text}<extra></extra>"}],
            layout: layout("Sample of a " + r.design.replace("_", "-") + " design with " + r.looks + " looks",
                           "", r.method, {yaxis: {title: {text: r.fixed_n ? "recipients" : "times the fixed sample"},
                           tickformat: r.fixed_n ? ",.0f" : ".2f", rangemode: "tozero"}})};
  }

  function banditFigure(r) {
    var batches = r.losing_share_by_batch.map(function (_, i) { return i + 1; });
    return {data: [
      {type: "scatter", mode: "lines+markers", name: "Thompson sampling", x: batches, y: r.losing_share_by_batch,
       line: {color: BLUE}, hovertemplate: "batch %{x}: %{y:.1%} to losing variants<extra></extra>"},
      {type: "scatter", mode: "lines", name: "fixed A/B test", x: [1, batches.length],
       y: [r.losing_share_fixed, r.losing_share_fixed], line: {color: GREY, dash: "dash"},
       hovertemplate: "fixed test: %{y:.1%}<extra></extra>"}
    ], layout: layout("Traffic to losing variants over " + human(r.horizon) + " sends",
                      "batch of " + human(r.batch_size) + " sends", r.method,
                      {yaxis: {title: {text: "share sent to losing variants"}, tickformat: ".0%", range: [0, 1]}})};
  }

  var FIGURES = {"test-then-send": testThenSendFigure, sequential: sequentialFigure, bandit: banditFigure};

  // Draw the chart of a calculator's answer; a power curve asks the API for its points first.
  function drawChart(form, chart, body, reply) {
    var kind = form.dataset.chart;
    if (kind !== "curve") {
      Plotly.react(chart, FIGURES[kind](reply).data, FIGURES[kind](reply).layout, config);
      return Promise.resolve();
    }
    var request = curveBody(body, form.dataset.over);
    chart.dataset.body = JSON.stringify(request);
    return post(form.dataset.curve.replace(/^\/v1\/power\//, "/ui/power/api/"), request).then(function (curve) {
      if (!curve.ok) { Plotly.purge(chart); return; }
      var mark = {name: form.dataset.markName, x: pick(form.dataset.markX, body, reply),
                  y: pick(form.dataset.markY, body, reply)};
      var figure = curveFigure(curve.body, mark);
      Plotly.react(chart, figure.data, figure.layout, config);
    });
  }

  function setupCalculators() {
    document.querySelectorAll("form.calc").forEach(function (form) {
      var answer = form.parentNode.querySelector(".calc-answer");
      var chart = form.parentNode.querySelector(".calc-chart");
      var timer = null;
      var asked = 0;
      function update() {
        var mine = ++asked;
        var body = formBody(form);
        answer.dataset.state = "busy";
        chart.dataset.state = "busy";
        answer.dataset.body = JSON.stringify(body);
        // the page's session answers at /ui/power/api what the key answers at /v1/power
        post(form.dataset.endpoint.replace(/^\/v1\/power\//, "/ui/power/api/"), body).then(function (reply) {
          if (mine !== asked) { return null; }
          if (reply.ok) {
            answer.className = "box decision calc-answer";
            showAnswer(answer, reply.body, (form.dataset.answer || "").split(","));
          } else {
            answer.className = "box warn calc-answer";
            answer.textContent = describeError(reply.body);
            Plotly.purge(chart);  // no stale chart beside an error
          }
          answer.dataset.state = "done";
          return reply.ok ? drawChart(form, chart, body, reply.body) : null;
        }).catch(function (err) {
          answer.className = "box warn calc-answer";
          answer.textContent = "could not reach the service: " + err;
          answer.dataset.state = "done";
        }).then(function () {
          if (mine === asked) { chart.dataset.state = "done"; }
        });
      }
      form.addEventListener("submit", function (event) { event.preventDefault(); });
      form.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(update, 250);
      });
      update();
    });
  }

  function setupPower() {
    var form = document.getElementById("power-form");
    if (!form) { return; }
    var answer = document.getElementById("power-answer");
    var chart = document.getElementById("power-chart");
    var timer = null;
    var asked = 0;

    function update() {
      var mine = ++asked;
      var body = powerBody(form);
      answer.dataset.state = "busy";
      post("/ui/power/curve", body).then(function (curve) {
        if (mine !== asked) { return; }
        var plan = curve.ok ? {ok: true, body: curve.body.plan} : curve;
        if (!plan.ok) {
          answer.className = "box warn";
          answer.textContent = describeError(plan.body);
        } else {
          var p = plan.body;
          answer.className = "box decision";
          answer.innerHTML = "";
          var head = document.createElement("b");
          head.id = "power-total";
          head.textContent = fmt(p.per_arm) + " recipients per arm, " + fmt(p.total) + " in total" +
            (p.days !== null && p.days !== undefined ? ", " + fmt(p.days) + " days" : "");
          var method = document.createElement("div");
          method.className = "muted";
          method.textContent = p.method;
          answer.appendChild(head);
          answer.appendChild(method);
        }
        if (curve.ok) {
          Plotly.react(chart, curve.body.figure.data, curve.body.figure.layout, config);
        } else {
          Plotly.purge(chart);  // no stale curve beside an error
        }
        answer.dataset.state = "done";
      }).catch(function (err) {
        answer.className = "box warn";
        answer.textContent = "could not reach the service: " + err;
        answer.dataset.state = "done";
      });
    }

    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 150);
    });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures();
    setupPower();
    setupCalculators();
  });
})();
