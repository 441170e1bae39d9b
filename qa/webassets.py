"""The web app's stylesheet and the small scripts its HTML components run (`js_on_load` of
`gr.HTML`): open a citation in the reader, copy a citation, show an earlier answer's sources,
keep the newest answer in view, scroll the reader to the cited paragraph.

Colours are chosen for contrast >= 4.5:1 in light and dark mode (Gradio adds `.dark` to the
page in dark mode); the highlight is dark text on light yellow in both (about 14:1).
"""

CSS = """
/* Gradio's Soft theme at >= 4.5:1 (issue 14, axe-core): darker indigo for labels, accents and
   primary buttons, darker grey for hints and placeholders; lighter ones in dark mode. */
.gradio-container { --block-label-text-color: #4338ca; --block-title-text-color: #4338ca; --color-accent: #4f46e5;
  --body-text-color-subdued: #4b5563; --input-placeholder-color: #6b7280; --button-primary-background-fill: #4f46e5;
  --button-primary-background-fill-hover: #4338ca; --checkbox-label-background-fill-selected: #4f46e5;
  --link-text-color: #1d4ed8; --block-info-text-color: #4b5563; }
.dark .gradio-container, .gradio-container.dark { --block-label-text-color: #e0e7ff; --block-title-text-color: #e0e7ff;
  --color-accent: #a5b4fc; --body-text-color-subdued: #d1d5db; --input-placeholder-color: #d1d5db;
  --button-primary-background-fill: #4338ca; --button-primary-background-fill-hover: #3730a3;
  --checkbox-label-background-fill-selected: #4338ca; --link-text-color: #93c5fd; --block-info-text-color: #d1d5db; }
.gradio-container button.stop { background: #b91c1c !important; color: #ffffff !important; border-color: #991b1b !important; }
.gradio-container button.stop:hover { background: #991b1b !important; }
footer .show-api, footer a, footer button { color: var(--body-text-color) !important; }
.qa-sr { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
         clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
.qa-conv { position: relative; max-height: calc(100vh - 400px); min-height: 260px; overflow-y: auto; padding: 2px 6px; }
.qa-empty p, .qa-hint { color: var(--body-text-color); font-style: italic; }
.qa-turn { border-left: 3px solid transparent; padding: 4px 10px 10px; margin: 0 0 10px; }
.qa-turn.qa-selected { border-left-color: #2563eb; }
.qa-q { font-size: 1rem !important; font-weight: 600; margin: 6px 0 !important; }
.qa-quote { font-size: 1.08rem; line-height: 1.5; margin: 4px 0 !important; padding: 6px 12px !important;
            border-left: 4px solid #2563eb !important; background: transparent; }
.qa-cite { margin: 4px 0 8px !important; font-weight: 600; }
.qa-support { font-size: 0.88rem; margin-top: 6px; }
.qa-support h3 { font-size: 0.88rem !important; font-weight: 600; margin: 6px 0 2px !important; }
.qa-support ul { margin: 0 0 0 1.1em !important; padding: 0 !important; }
.qa-support li { margin: 2px 0 !important; line-height: 1.4; }
.qa-more summary, .qa-why summary, .qa-source summary { cursor: pointer; }
.qa-refusal { margin: 4px 0 !important; }
.qa-stale, .qa-within, .qa-low { font-size: 0.88rem; background: #fef3c7; color: #3f2a06 !important; padding: 2px 8px;
                        border-radius: 4px; display: inline-block; }
.dark .qa-stale, .dark .qa-within, .dark .qa-low { background: #3f2a06; color: #fde68a !important; }
a.qa-open { color: #1d4ed8 !important; text-decoration: underline; }
.dark a.qa-open { color: #93c5fd !important; }
button.qa-copy, button.qa-show { font-size: 0.82rem; padding: 1px 8px; margin-left: 6px; border-radius: 6px;
                                 border: 1px solid currentColor; color: var(--body-text-color); background: transparent; }
button.qa-show { margin: 6px 0 0; }
.qa-copied { font-size: 0.82rem; margin-left: 6px; font-weight: 400; }
.qa-sources mark, .qa-inline-sources mark, .qa-reader mark { background: #fde68a !important; color: #1a1a1a !important;
                                                            padding: 0 1px; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin: 8px 0; }
.qa-source p { margin: 6px 0 !important; line-height: 1.5; }
.qa-why { font-size: 0.88rem; margin: 4px 0; }
.qa-for { font-size: 0.9rem; margin: 0 0 4px !important; }
.qa-sources-h { font-size: 1rem !important; margin: 4px 0 !important; }
.qa-pending progress { width: 10em; vertical-align: middle; }
.qa-docs { width: 100%; border-collapse: collapse; }
.qa-docs th, .qa-docs td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--border-color-primary); }
.qa-status { font-size: 0.9rem; }
.qa-build p { margin: 4px 0 !important; }
.qa-build progress { width: 100%; max-width: 28em; }
.qa-msg { padding: 6px 10px; border-radius: 6px; border: 1px solid var(--border-color-primary); }
.qa-msg.qa-bad { border-color: #b91c1c; }
.qa-reader { max-width: 46em; }
.qa-reader-meta { font-size: 0.9rem; }
.qa-reader-section { font-size: 1.05rem !important; margin: 18px 0 6px !important; }
.qa-page { font-size: 0.85rem; font-weight: 600; border-top: 1px dashed var(--border-color-primary); padding-top: 4px; }
.qa-para { line-height: 1.6; margin: 8px 0 !important; scroll-margin-top: 80px; }
.qa-pnum { font-weight: 600; margin-right: 4px; }
.qa-target { outline: 2px solid #2563eb; outline-offset: 4px; border-radius: 2px; }
@media (max-width: 767px) {
  .qa-conv { max-height: none; min-height: 0; overflow: visible; }
  #qa-side { display: none !important; }
  button.qa-show { display: none; }
  .qa-turn { padding: 2px 0 8px 6px; }
  .qa-quote { padding: 4px 8px !important; }
  .qa-conv { padding: 0; }
}
@media (min-width: 768px) { .qa-inline-sources { display: none; } }
"""

# Shared by the conversation and the sources panel: links open the reader (a modified click
# still opens a new tab), "Copy citation", "Show sources" / clicking an answer selects it.
CLICKS = """
function qaSelect(i) {
  var turn = null;
  document.querySelectorAll('.qa-conv .qa-turn').forEach(function (t) {
    var on = t.dataset.turn === String(i);
    t.classList.toggle('qa-selected', on);
    if (on) turn = t;
  });
  var panel = document.getElementById('qa-sources-panel');
  var own = turn && turn.querySelector('.qa-inline-sources');
  var shown = panel && panel.querySelector('.qa-turn-sources');
  if (!panel || !own || (shown && shown.dataset.turn === String(i))) return;
  var q = turn.querySelector('.qa-q').cloneNode(true);
  q.querySelectorAll('.qa-sr').forEach(function (n) { n.remove(); });
  var sec = document.createElement('section');
  sec.className = 'qa-turn-sources';
  sec.dataset.turn = String(i);
  sec.setAttribute('aria-label', 'Sources of question ' + (Number(i) + 1));
  var p = document.createElement('p');
  p.className = 'qa-for';
  p.append('Sources for: ');
  var qq = document.createElement('q');
  qq.textContent = q.textContent;
  p.append(qq);
  sec.append(p);
  own.cloneNode(true).childNodes.forEach(function (n) {
    if (n.nodeName === 'H4') { var h = document.createElement('h3'); h.className = n.className;
                               h.textContent = n.textContent; n = h; }
    sec.append(n);
  });
  panel.replaceChildren(sec);
}
function qaFallbackCopy(text) {
  var ta = document.createElement('textarea');
  ta.value = text; ta.setAttribute('readonly', ''); ta.style.position = 'fixed'; ta.style.opacity = '0';
  document.body.appendChild(ta); ta.select();
  var ok = false;
  try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
  ta.remove();
  return ok;
}
function qaCopy(btn) {
  var text = btn.dataset.copy, note = btn.nextElementSibling;
  var done = function (ok) {
    if (!note) return;
    note.textContent = ok ? 'Copied' : 'Could not copy: select the text instead';
    setTimeout(function () { note.textContent = ''; }, 3000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(qaFallbackCopy(text)); });
  } else { done(qaFallbackCopy(text)); }
}
element.addEventListener('click', function (ev) {
  var a = ev.target.closest('a.qa-open');
  if (a) {
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey || ev.button === 1) return;
    ev.preventDefault();
    var u = new URL(a.getAttribute('href'), window.location.href);
    try { history.pushState(null, '', u.pathname + u.search); } catch (e) {}
    trigger('click', {doc: u.searchParams.get('doc'), p: u.searchParams.get('p'),
                      s: u.searchParams.get('s'), e: u.searchParams.get('e')});
    return;
  }
  var b = ev.target.closest('button.qa-copy');
  if (b) { qaCopy(b); return; }
  var s = ev.target.closest('button.qa-show');
  if (s) { qaSelect(s.dataset.turn); return; }
  var t = ev.target.closest('.qa-conv .qa-turn');
  if (t && !ev.target.closest('summary, details, a, button')) qaSelect(t.dataset.turn);
});
"""

# The conversation: after each update the newest question and its answer are brought into view
# (inside the scrolling conversation on a wide screen; the page itself on a phone).
CONVERSATION_JS = CLICKS + """
watch('value', function () {
  var turns = element.querySelectorAll('.qa-turn');
  var last = turns[turns.length - 1];
  if (!last) return;
  requestAnimationFrame(function () {
    var box = element.querySelector('.qa-conv');
    if (box && box.scrollHeight > box.clientHeight + 1) box.scrollTop = Math.max(0, last.offsetTop - 4);
    var r = last.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight * 0.45) last.scrollIntoView({block: 'start'});
  });
});
"""

SOURCES_JS = CLICKS

# The reader: scroll to the cited paragraph and focus it, once it is visible (its tab may be
# switched to in the same update).
READER_JS = """
function qaGo(tries) {
  var t = element.querySelector('#qa-target');
  if (!t) return;
  if (t.offsetParent === null) { if (tries > 0) setTimeout(function () { qaGo(tries - 1); }, 50); return; }
  t.scrollIntoView({block: 'center'});
  t.focus({preventScroll: true});
}
qaGo(40);
watch('value', function () { qaGo(40); });
"""

FORGET_READER_URL = "() => { try { history.replaceState(null, '', window.location.pathname); } catch (e) {} }"
