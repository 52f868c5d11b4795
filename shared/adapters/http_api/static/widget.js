/*! RAG Explorer help widget: one file, no dependencies, no build step. See docs/widget.md.
 *
 * <script src="https://API/widget.js" data-key="pk_..." async></script>
 *
 * Everything it shows from a response is put in the page as text (textContent, never innerHTML), so a
 * document that contains HTML or script cannot run in the page. It lives in a Shadow DOM: the host
 * page's CSS cannot reach it and its CSS cannot reach the page.
 */
(function () {
  "use strict";
  if (window.ragExplorerWidget) return;
  var WIDGET_SRC = /\/widget(?:\.js|\/[^\/?#]+)(?:[?#].*)?$/;
  var FENCE = /^ {0,3}(`{3,}|~{3,})/;
  var LIST = /^\s{0,6}([-*+\u2022]|\d{1,3}[.)])\s+/;
  var script = document.currentScript || findScript();
  if (!script) return;
  var data = script.dataset;
  var base = (data.api || script.src.replace(WIDGET_SRC, "")).replace(/\/+$/, "");
  var key = data.key || "";

  // Every string the customer reads; each can be replaced by a data- attribute (data-not-helpful, ...).
  var T = {
    launcher: "Help",
    title: "Help center",
    intro: "Ask a question; answers come from our documentation, with links to the pages they quote.",
    label: "Your question",
    placeholder: "How do I…?",
    button: "Ask",
    close: "Close help",
    loading: "Searching the documentation…",
    answerReady: "Answer ready.",
    sources: "Sources",
    source: "Source",
    rate: "Did this help?",
    helpful: "Helpful",
    notHelpful: "Not helpful",
    thanks: "Thanks for your feedback.",
    comment: "What were you looking for? (optional)",
    send: "Send",
    contact: "Contact support",
    escalation: "Our support team can help with this.",
    askFirst: "Ask your question first: if the answer does not help, you can send it to our support team.",
    email: "Your e-mail (optional)",
    message: "Message (optional)",
    sent: "Sent: our support team will get back to you.",
    notSent: "Your message could not be delivered. Please try again later.",
    error: "Something went wrong. Please try again.",
    offline: "The help service could not be reached. Please try again later.",
    retry: "Please try again in {s} s."
  };
  for (var name in T) if (typeof data[name] === "string" && data[name]) T[name] = data[name];

  var host = document.createElement("div");
  host.id = "rag-explorer-widget";
  host.style.cssText = "all:initial!important";
  if (data.theme === "light" || data.theme === "dark") host.setAttribute("data-theme", data.theme);
  if (data.position === "left") host.setAttribute("data-position", "left");
  var root = host.attachShadow({ mode: "open" });

  var style = el("style");
  style.textContent = css();
  var wrap = el("div", "w");
  var launcher = el("button", "launch");
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "rx-panel");
  launcher.setAttribute("aria-haspopup", "dialog");
  launcher.appendChild(icon());
  launcher.appendChild(el("span", "", T.launcher));

  var panel = el("div", "panel");
  panel.id = "rx-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", "rx-title");
  var head = el("div", "head");
  var title = el("h2", "", T.title);
  title.id = "rx-title";
  var closer = el("button", "x");
  closer.type = "button";
  closer.setAttribute("aria-label", T.close);
  var cross = el("span", "", "\u00d7");
  cross.setAttribute("aria-hidden", "true");
  closer.appendChild(cross);
  head.appendChild(title);
  head.appendChild(closer);

  var body = el("div", "body");
  var form = el("form", "ask");
  var label = el("label", "", T.label);
  label.htmlFor = "rx-q";
  var row = el("div", "row");
  var input = el("textarea");
  input.id = "rx-q";
  input.rows = 2;
  input.placeholder = T.placeholder;
  input.setAttribute("autocomplete", "off");
  var submit = el("button", "primary", T.button);
  submit.type = "submit";
  row.appendChild(input);
  row.appendChild(submit);
  form.appendChild(label);
  form.appendChild(row);
  var out = el("div", "out");
  out.setAttribute("aria-live", "polite");
  var status = el("p", "status");
  var answer = el("div", "answer");
  var contactBox = el("div", "contactbox");
  out.appendChild(status);
  out.appendChild(answer);
  out.appendChild(contactBox);
  body.appendChild(el("p", "intro", T.intro));
  body.appendChild(form);
  body.appendChild(out);
  var foot = el("div", "foot");
  panel.appendChild(head);
  panel.appendChild(body);
  panel.appendChild(foot);
  wrap.appendChild(launcher);
  wrap.appendChild(panel);
  root.appendChild(style);
  root.appendChild(wrap);

  var last = null; // the last /query response (and its question)
  var asking = false;
  setFooter();

  launcher.addEventListener("click", function () {
    if (panel.hidden) open();
    else close();
  });
  closer.addEventListener("click", close);
  root.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !panel.hidden) {
      e.stopPropagation();
      close();
    }
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ask();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    ask();
  });

  (document.body || document.documentElement).appendChild(host);
  window.ragExplorerWidget = { open: open, close: close };

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }

  function ask() {
    var question = input.value.trim();
    if (!question || asking) return;
    asking = true;
    submit.disabled = true;
    answer.setAttribute("aria-busy", "true");
    clear(answer);
    clear(contactBox);
    setStatus(T.loading);
    post("/query", { question: question, page_url: pageUrl() })
      .then(
        function (response) {
          last = response;
          show(response);
          setStatus(T.answerReady, "sr");
        },
        function (err) {
          last = null;
          setStatus(err.message, "error");
        }
      )
      .then(function () {
        asking = false;
        submit.disabled = false;
        answer.setAttribute("aria-busy", "false");
        setFooter();
      });
  }

  function show(r) {
    var cits = Array.isArray(r.citations) ? r.citations : [];
    if (r.decision === "answer" && typeof r.answer === "string") {
      answer.appendChild(renderText(r.answer, cits));
      if (cits.length) answer.appendChild(sourceList(cits));
      if (isId(r.interaction_id)) answer.appendChild(rating(r));
      return;
    }
    var refusal = el("div", "refusal");
    refusal.appendChild(el("p", "", text(r.escalation) || T.escalation));
    refusal.appendChild(contactControl(r, "button"));
    answer.appendChild(refusal);
  }

  // ---- answer text → DOM: paragraphs, fenced code, lists (the core's numbered steps), [n] markers
  function renderText(src, cits) {
    var frag = document.createDocumentFragment();
    var lines = src.replace(/\r\n?/g, "\n").split("\n");
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var fence = FENCE.exec(line);
      if (!line.trim()) {
        i++;
      } else if (fence) {
        var code = [];
        var mark = fence[1];
        for (i++; i < lines.length && !isClosing(lines[i], mark); i++) code.push(lines[i]);
        i++;
        frag.appendChild(block(code.join("\n")));
      } else if (LIST.test(line)) {
        var first = LIST.exec(line);
        var list = el(/\d/.test(first[1]) ? "ol" : "ul");
        if (/\d/.test(first[1]) && parseInt(first[1], 10) !== 1) list.start = parseInt(first[1], 10);
        var item = null;
        for (; i < lines.length && lines[i].trim() && !FENCE.test(lines[i]); i++) {
          var m = LIST.exec(lines[i]);
          if (m) {
            item = el("li");
            list.appendChild(item);
            inline(item, lines[i].slice(m[0].length), cits);
          } else {
            inline(item, " " + lines[i].trim(), cits);
          }
        }
        frag.appendChild(list);
      } else if (/^\s{0,3}\|/.test(line)) {
        var rows = [];
        for (; i < lines.length && /^\s{0,3}\|/.test(lines[i]); i++) rows.push(lines[i]);
        frag.appendChild(block(rows.join("\n")));
      } else {
        var para = [];
        for (; i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !LIST.test(lines[i]); i++) {
          para.push(lines[i].trim());
        }
        var p = el("p");
        inline(p, para.join(" "), cits);
        frag.appendChild(p);
      }
    }
    return frag;
  }

  function isClosing(line, mark) {
    var t = line.trim();
    return t.length >= mark.length && t.split(mark[0]).join("") === "";
  }

  function block(content) {
    var pre = el("pre");
    pre.tabIndex = 0; // a scrollable region must be reachable by keyboard
    pre.appendChild(el("code", "", content));
    return pre;
  }

  // `code` spans and [n] citation markers; everything else stays text
  function inline(parent, s, cits) {
    var re = /`([^`\n]+)`|\[(\d{1,3})\]/g;
    var at = 0;
    var m;
    while ((m = re.exec(s))) {
      if (m.index > at) parent.appendChild(document.createTextNode(s.slice(at, m.index)));
      if (m[1] !== undefined) parent.appendChild(el("code", "", m[1]));
      else parent.appendChild(marker(parseInt(m[2], 10), cits, m[0]));
      at = re.lastIndex;
    }
    if (at < s.length) parent.appendChild(document.createTextNode(s.slice(at)));
  }

  function marker(n, cits, raw) {
    var c = citation(cits, n);
    if (!c) return document.createTextNode(raw);
    var name = T.source + " " + n + ": " + citeName(c);
    var url = webUrl(c.url);
    var node;
    if (url) {
      node = el("a", "cite", "[" + n + "]");
      node.href = url;
      node.target = "_blank";
      node.rel = "noopener";
    } else {
      node = el("button", "cite", "[" + n + "]");
      node.type = "button";
      node.addEventListener("click", function () {
        var li = answer.querySelector("#rx-src-" + n);
        if (li) li.focus();
      });
    }
    node.setAttribute("aria-label", name);
    return node;
  }

  function sourceList(cits) {
    var section = el("div", "sources");
    var h = el("h3", "", T.sources);
    h.id = "rx-sources";
    var ol = el("ol");
    ol.setAttribute("aria-labelledby", "rx-sources");
    for (var i = 0; i < cits.length; i++) {
      var c = cits[i];
      if (!c || typeof c.n !== "number") continue;
      var li = el("li");
      li.value = c.n;
      li.id = "rx-src-" + c.n;
      li.tabIndex = -1;
      var url = webUrl(c.url);
      var name = citeName(c);
      if (url) {
        var a = el("a", "", name);
        a.href = url;
        a.target = "_blank";
        a.rel = "noopener";
        li.appendChild(a);
      } else {
        li.appendChild(el("span", "", name));
      }
      var where = text(c.location);
      if (where && where !== name) li.appendChild(el("span", "loc", where));
      ol.appendChild(li);
    }
    section.appendChild(h);
    section.appendChild(ol);
    return section;
  }

  // ---- rating and handoff
  function rating(r) {
    var box = el("div", "rating");
    var group = el("div", "rate");
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", "rx-rate");
    var q = el("span", "", T.rate);
    q.id = "rx-rate";
    var yes = el("button", "chip", T.helpful);
    var no = el("button", "chip", T.notHelpful);
    var note = el("p", "note");
    var more = el("div", "more");
    more.hidden = true;
    [yes, no].forEach(function (b) {
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
    });
    group.appendChild(q);
    group.appendChild(yes);
    group.appendChild(no);
    box.appendChild(group);
    box.appendChild(more);
    box.appendChild(note);

    function rate(helpful) {
      yes.setAttribute("aria-pressed", String(helpful));
      no.setAttribute("aria-pressed", String(!helpful));
      note.textContent = "";
      feedback(r, { helpful: helpful }, note);
      if (!helpful && !more.firstChild) fillMore();
      more.hidden = helpful;
    }

    function fillMore() {
      var f = el("form");
      var lab = el("label", "", T.comment);
      lab.htmlFor = "rx-comment";
      var area = el("textarea");
      area.id = "rx-comment";
      area.rows = 2;
      area.maxLength = 2000;
      var send = el("button", "secondary", T.send);
      send.type = "submit";
      f.appendChild(lab);
      f.appendChild(area);
      f.appendChild(send);
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        var comment = area.value.trim();
        if (!comment) return;
        feedback(r, { helpful: false, comment: comment }, note);
      });
      more.appendChild(f);
      more.appendChild(contactControl(r, "button"));
    }

    yes.addEventListener("click", function () {
      rate(true);
    });
    no.addEventListener("click", function () {
      rate(false);
    });
    return box;
  }

  function feedback(r, fields, note) {
    fields.interaction_id = r.interaction_id;
    return post("/feedback", fields).then(
      function () {
        note.textContent = T.thanks;
      },
      function (err) {
        note.textContent = err.message;
      }
    );
  }

  // "Contact support": a link for form/mailto handoffs (pre-filled by the server), else a button
  function contactControl(r, look) {
    var h = r && r.handoff;
    var url = h && (h.kind === "form" || h.kind === "mailto") ? handoffUrl(h.url, h.kind) : null;
    if (!r && !url) url = handoffUrl(data.contactUrl, /^mailto:/i.test(data.contactUrl || "") ? "mailto" : "form");
    var node;
    if (url) {
      node = el("a", look, T.contact);
      node.href = url;
      if (!/^mailto:/i.test(url)) {
        node.target = "_blank";
        node.rel = "noopener";
      }
      node.addEventListener("click", function () {
        // recorded on the way out; keepalive lets it finish even if the page navigates (mailto:)
        if (r && isId(r.interaction_id)) {
          post("/feedback", { interaction_id: r.interaction_id, handoff: true }, true).then(noop, noop);
        }
      });
    } else {
      node = el("button", look, T.contact);
      node.type = "button";
      node.addEventListener("click", function () {
        openContact(r);
      });
    }
    return node;
  }

  function openContact(r) {
    clear(contactBox);
    if (!r) return say(contactBox, T.askFirst, input);
    var h = r.handoff;
    if (!h || h.kind !== "webhook" || !isId(r.interaction_id)) {
      return say(contactBox, text(r.escalation) || T.escalation);
    }
    var f = el("form", "ticket");
    f.setAttribute("aria-label", T.contact);
    var email = field(f, "input", "rx-email", T.email);
    email.type = "email";
    email.setAttribute("autocomplete", "email");
    email.maxLength = 320;
    var msg = field(f, "textarea", "rx-msg", T.message);
    msg.rows = 3;
    msg.maxLength = 2000;
    var send = el("button", "primary", T.send);
    send.type = "submit";
    var note = el("p", "note");
    f.appendChild(send);
    contactBox.appendChild(f);
    contactBox.appendChild(note);
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      send.disabled = true;
      var fields = { interaction_id: r.interaction_id, handoff: true };
      if (email.value.trim()) fields.contact = email.value.trim();
      if (msg.value.trim()) fields.comment = msg.value.trim();
      post("/feedback", fields).then(
        function (res) {
          var ok = res && res.handoff && res.handoff.delivered === true;
          note.textContent = ok ? T.sent : T.notSent;
          send.disabled = ok;
        },
        function (err) {
          note.textContent = err.message;
          send.disabled = false;
        }
      );
    });
    email.focus();
  }

  function field(f, tag, id, caption) {
    var lab = el("label", "", caption);
    lab.htmlFor = id;
    var node = el(tag);
    node.id = id;
    f.appendChild(lab);
    f.appendChild(node);
    return node;
  }

  function say(where, message, focus) {
    var p = el("p", "note", message);
    p.tabIndex = -1;
    where.appendChild(p);
    (focus || p).focus();
  }

  function setFooter() {
    clear(foot);
    foot.appendChild(contactControl(last, "link"));
  }

  function setStatus(message, kind) {
    status.textContent = message || "";
    status.className = "status" + (kind ? " " + kind : "");
    if (kind === "error") status.setAttribute("role", "alert");
    else status.removeAttribute("role");
  }

  // ---- HTTP: JSON in and out; failures carry the error model's message (and Retry-After)
  function post(path, payload, keepalive) {
    var headers = { "content-type": "application/json" };
    if (key) headers["x-api-key"] = key;
    return fetch(base + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      keepalive: !!keepalive,
      headers: headers,
      body: JSON.stringify(payload)
    }).then(
      function (res) {
        return res.text().then(function (body) {
          var json = null;
          try {
            json = JSON.parse(body);
          } catch (e) {
            json = null;
          }
          if (res.ok && json && typeof json === "object") return json;
          var message = (json && typeof json.message === "string" && json.message) || T.error;
          var wait = res.headers.get("retry-after");
          if ((res.status === 429 || res.status === 503) && /^\d{1,6}$/.test(wait || "")) {
            message += " " + T.retry.replace("{s}", wait);
          }
          throw new Error(message);
        });
      },
      function () {
        throw new Error(T.offline);
      }
    );
  }

  function pageUrl() {
    var href = String(location.href);
    if (!/^https?:\/\/\S+$/.test(href)) return undefined;
    if (href.length > 2048) href = href.split(/[?#]/)[0];
    return href.length > 2048 ? undefined : href;
  }

  // ---- small helpers
  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function text(value) {
    return typeof value === "string" ? value : "";
  }

  function isId(value) {
    return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
  }

  function citation(cits, n) {
    for (var i = 0; i < cits.length; i++) if (cits[i] && cits[i].n === n) return cits[i];
    return null;
  }

  function citeName(c) {
    return text(c.title) || text(c.location) || text(c.source).split("/").pop() || T.source + " " + c.n;
  }

  // Only web links are ever followed: a javascript: or data: URL in a response is dropped.
  function webUrl(value) {
    return typeof value === "string" && /^https?:\/\/[^\s]+$/i.test(value) ? value : null;
  }

  function handoffUrl(value, kind) {
    if (typeof value !== "string") return null;
    return kind === "mailto" ? (/^mailto:[^\s]+$/i.test(value) ? value : null) : webUrl(value);
  }

  function noop() {}

  function findScript() {
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) if (WIDGET_SRC.test(all[i].src || "")) return all[i];
    return null;
  }

  function icon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H9l-5 4v-4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z");
    svg.appendChild(path);
    return svg;
  }

  function css() {
    var light =
      "--bg:#fff;--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--accent:#0b57d0;--on-accent:#fff;" +
      "--soft:#f3f6fa;--code:#f6f8fa;--err:#b3261e";
    var dark =
      "--bg:#1c2128;--fg:#e6edf3;--muted:#a3adb8;--line:#444c56;--accent:#8ab4f8;--on-accent:#0b1a33;" +
      "--soft:#262c36;--code:#161b22;--err:#ffb4ab";
    return (
      ":host{all:initial}" +
      ".w{" + light + ";font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg)}" +
      ":host([data-theme=dark]) .w{" + dark + "}" +
      "@media (prefers-color-scheme:dark){:host(:not([data-theme=light])) .w{" + dark + "}}" +
      "*,*::before,*::after{box-sizing:border-box}" +
      "[hidden]{display:none!important}" +
      "button,input,textarea{font:inherit;color:inherit}" +
      ":focus-visible{outline:3px solid var(--accent);outline-offset:2px}" +
      ".launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;display:flex;align-items:center;" +
      "gap:8px;padding:10px 18px;border:0;border-radius:999px;background:var(--accent);color:var(--on-accent);" +
      "font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
      ".launch svg{width:20px;height:20px;fill:currentColor}" +
      ".panel{position:fixed;right:20px;bottom:76px;z-index:2147483001;width:400px;max-width:calc(100vw - 40px);" +
      "max-height:min(680px,calc(100vh - 96px));display:flex;flex-direction:column;background:var(--bg);" +
      "color:var(--fg);border:1px solid var(--line);border-radius:12px;box-shadow:0 12px 40px rgba(0,0,0,.3);" +
      "overflow:hidden}" +
      ":host([data-position=left]) .launch,:host([data-position=left]) .panel{right:auto;left:20px}" +
      ".head{display:flex;align-items:center;justify-content:space-between;padding:12px 12px 12px 16px;" +
      "border-bottom:1px solid var(--line)}" +
      "h2{margin:0;font-size:17px;font-weight:650}" +
      "h3{margin:14px 0 4px;font-size:14px;color:var(--muted)}" +
      ".x{width:36px;height:36px;border:0;border-radius:8px;background:transparent;font-size:24px;" +
      "line-height:1;cursor:pointer}" +
      ".x:hover{background:var(--soft)}" +
      ".body{padding:12px 16px;overflow:auto;flex:1}" +
      ".intro{margin:0 0 10px;color:var(--muted);font-size:14px}" +
      "label{display:block;font-size:14px;font-weight:600;margin:0 0 4px}" +
      ".row{display:flex;gap:8px;align-items:flex-end}" +
      "textarea,input{width:100%;padding:8px 10px;border:1px solid var(--muted);border-radius:8px;" +
      "background:var(--bg);resize:vertical}" +
      ".primary,.secondary,.chip,a.button,button.button{display:inline-block;padding:8px 14px;border-radius:8px;" +
      "font-weight:600;cursor:pointer;text-decoration:none;border:1px solid var(--accent)}" +
      ".primary,a.button,button.button{background:var(--accent);color:var(--on-accent)}" +
      ".secondary,.chip{background:var(--bg);color:var(--accent)}" +
      ".chip[aria-pressed=true]{background:var(--accent);color:var(--on-accent)}" +
      "button:disabled{opacity:.6;cursor:progress}" +
      ".out{margin-top:12px}" +
      ".status{margin:0;color:var(--muted);font-size:14px}" +
      ".status:empty{display:none}" +
      ".status.error{color:var(--err)}" +
      ".status.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
      ".answer p{margin:0 0 10px}" +
      ".answer ol,.answer ul{margin:0 0 10px;padding-left:22px}" +
      "pre{margin:0 0 10px;padding:10px;background:var(--code);border:1px solid var(--line);border-radius:8px;" +
      "overflow:auto;font-size:13px;white-space:pre}" +
      "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}" +
      "p code,li code{background:var(--code);padding:1px 4px;border-radius:4px}" +
      "a{color:var(--accent)}" +
      ".cite{margin:0 1px;padding:0;border:0;background:none;color:var(--accent);font-size:.8em;" +
      "vertical-align:super;line-height:1;text-decoration:none;cursor:pointer}" +
      "a.cite:hover{text-decoration:underline}" +
      ".sources ol{margin:0;padding-left:22px;font-size:14px}" +
      ".sources li{margin:2px 0}" +
      ".loc{display:block;color:var(--muted);font-size:13px}" +
      ".rating{margin-top:14px;padding-top:10px;border-top:1px solid var(--line)}" +
      ".rate{display:flex;flex-wrap:wrap;align-items:center;gap:8px;font-size:14px}" +
      ".more{margin-top:10px}" +
      ".more form,.ticket{display:grid;gap:6px;margin-bottom:10px}" +
      ".more form button,.ticket button{justify-self:start}" +
      ".note{margin:8px 0 0;font-size:14px;color:var(--muted)}" +
      ".note:empty{display:none}" +
      ".refusal p{margin:0 0 10px}" +
      ".contactbox:not(:empty){margin-top:12px}" +
      ".foot{padding:8px 16px;border-top:1px solid var(--line);font-size:13px;text-align:right}" +
      ".link{padding:0;border:0;background:none;color:var(--accent);text-decoration:underline;cursor:pointer}" +
      "@media (max-width:480px){.panel{left:0;right:0;top:0;bottom:0;width:100%;max-width:none;" +
      "max-height:none;border-radius:0;border:0}.launch{right:12px;bottom:12px}}"
    );
  }
})();
