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

  function setupCalculators() {
    document.querySelectorAll("form.calc").forEach(function (form) {
      var answer = form.parentNode.querySelector(".calc-answer");
      var timer = null;
      var asked = 0;
      function update() {
        var mine = ++asked;
        var body = formBody(form);
        answer.dataset.state = "busy";
        answer.dataset.body = JSON.stringify(body);
        // the page's session answers at /ui/power/api what the key answers at /v1/power
        post(form.dataset.endpoint.replace(/^\/v1\/power\//, "/ui/power/api/"), body).then(function (reply) {
          if (mine !== asked) { return; }
          if (reply.ok) {
            answer.className = "box decision calc-answer";
            showAnswer(answer, reply.body, (form.dataset.answer || "").split(","));
          } else {
            answer.className = "box warn calc-answer";
            answer.textContent = describeError(reply.body);
          }
          answer.dataset.state = "done";
        }).catch(function (err) {
          answer.className = "box warn calc-answer";
          answer.textContent = "could not reach the service: " + err;
          answer.dataset.state = "done";
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
