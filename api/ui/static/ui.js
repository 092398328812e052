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
  });
})();
