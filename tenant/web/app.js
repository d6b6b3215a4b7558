// Quince web page: the agents table (refreshed every few seconds) and the policy upload.
// Every value from the server is inserted with textContent or setAttribute, never as markup.
'use strict';

const REFRESH_MS = 3000;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function link(href, text) {
  const a = el('a', text);
  a.setAttribute('href', href);
  return a;
}

function when(epoch) {
  if (!epoch) return 'never';
  const d = new Date(epoch * 1000);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) { window.location.assign('/login'); throw new Error('not logged in'); }
  if (!r.ok) throw new Error((body && body.error) || ('HTTP ' + r.status));
  return body;
}

// ---- agents ------------------------------------------------------------------------------

function renderAgents(data) {
  const filter = document.getElementById('filter');
  const chosen = filter.value;
  const counts = document.getElementById('counts');
  counts.replaceChildren();
  const names = Object.keys(data.counts).sort();
  for (const n of names) {
    const li = el('li');
    li.appendChild(el('span', n));
    li.appendChild(document.createTextNode(': '));
    li.appendChild(el('strong', data.counts[n]));
    li.setAttribute('data-state', n);
    counts.appendChild(li);
  }
  const total = el('li');
  total.appendChild(el('span', 'total'));
  total.appendChild(document.createTextNode(': '));
  total.appendChild(el('strong', data.agents.length));
  counts.appendChild(total);

  const opts = [''].concat(names);
  if (chosen && !opts.includes(chosen)) opts.push(chosen);
  filter.replaceChildren();
  for (const n of opts) {
    const o = el('option', n || 'all');
    o.value = n;
    filter.appendChild(o);
  }
  filter.value = chosen;

  const tbody = document.querySelector('#agents tbody');
  tbody.replaceChildren();
  for (const a of data.agents) {
    if (chosen && a.state_name !== chosen) continue;
    const tr = el('tr');
    tr.setAttribute('data-agent', a.id);
    tr.setAttribute('data-state', a.state_name);
    const idc = el('td');
    idc.appendChild(link('/agent/' + encodeURIComponent(a.id), a.id));
    tr.appendChild(idc);
    tr.appendChild(el('td', a.port ? a.ip + ':' + a.port : a.ip, 'addr'));
    const sc = el('td');
    sc.appendChild(el('span', a.state_name, 'state ' + a.class));
    tr.appendChild(sc);
    tr.appendChild(el('td', when(a.last_attestation)));
    tr.appendChild(el('td', a.attestation_count, 'count'));
    const pc = el('td', null, 'policy');
    if (a.policy) pc.appendChild(link('/policy/' + encodeURIComponent(a.policy), a.policy));
    else pc.textContent = '—';
    tr.appendChild(pc);
    const fc = el('td', null, 'failures');
    if (a.failures) fc.appendChild(link('/agent/' + encodeURIComponent(a.id), a.failures + ' (' + a.last_event_id + ')'));
    else fc.textContent = '0';
    tr.appendChild(fc);
    tbody.appendChild(tr);
  }
  if (!tbody.children.length) {
    const tr = el('tr');
    const td = el('td', data.agents.length ? 'No agent in this state.' : 'The verifier has no agents.');
    td.colSpan = 7;
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  document.getElementById('updated').textContent = 'updated ' + when(data.time) + ' from the verifier at ' + data.verifier;
}

async function refreshAgents() {
  const err = document.getElementById('error');
  try {
    renderAgents(await getJSON('/api/agents'));
    err.hidden = true;
  } catch (e) {
    err.textContent = 'Cannot refresh: ' + e.message;
    err.hidden = false;
  }
  window.setTimeout(refreshAgents, REFRESH_MS);
}

async function logout() {
  try {
    const s = await getJSON('/api/session');
    await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': s.csrf } });
  } finally {
    window.location.assign('/login');
  }
}

function agentsPage() {
  document.getElementById('logout').addEventListener('click', logout);
  document.getElementById('filter').addEventListener('change', () => {
    getJSON('/api/agents').then(renderAgents).catch(() => {});
  });
  refreshAgents();
}

// ---- upload ------------------------------------------------------------------------------

let session = null;

async function readFile(input, what) {
  const f = input.files && input.files[0];
  if (!f) return null;
  if (f.size > session.max_upload) {
    throw new Error(what + ' ' + f.name + ' is ' + f.size + ' bytes; the limit is ' + session.max_upload);
  }
  return { name: f.name, text: await f.text() };
}

function showResult(ok, nodes) {
  const res = document.getElementById('result');
  res.replaceChildren();
  const box = el('div', null, ok ? 'ok' : 'error');
  box.id = ok ? 'upload-ok' : 'upload-error';
  box.setAttribute('role', ok ? 'status' : 'alert');
  for (const n of nodes) box.appendChild(n);
  res.appendChild(box);
}

async function submitUpload(ev) {
  ev.preventDefault();
  const button = document.getElementById('upload-submit');
  button.disabled = true;
  try {
    const kind = document.querySelector('input[name="kind"]:checked').value;
    const main = await readFile(document.getElementById('file'), 'file');
    const excl = await readFile(document.getElementById('excludes'), 'excludes file');
    if (!main) throw new Error('choose a file');
    if (excl && kind !== 'allowlist') throw new Error('an excludes file goes with an allowlist');
    const agents = Array.from(document.querySelectorAll('#agent-choices input:checked')).map((c) => c.value);
    const body = { name: document.getElementById('name').value, kind: kind, text: main.text, file: main.name, agents: agents };
    if (excl) { body.excludes = excl.text; body.excludes_file = excl.name; }
    const r = await fetch('/api/upload', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf },
      body: JSON.stringify(body),
    });
    let out = null;
    try { out = await r.json(); } catch (e) { out = null; }
    if (r.status === 413) throw new Error('the upload is over the server\'s limit (' + session.max_upload + ' bytes)');
    if (!r.ok) {
      const nodes = [el('p', (out && out.error) || ('HTTP ' + r.status))];
      if (out && out.line) {
        const p = el('p');
        p.appendChild(document.createTextNode('In ' + out.file + ', line '));
        const ln = el('strong', out.line);
        ln.id = 'error-line';
        p.appendChild(ln);
        p.appendChild(document.createTextNode(':'));
        nodes.push(p);
        nodes.push(el('pre', out.line_text, 'line'));
      }
      showResult(false, nodes);
      return;
    }
    const nodes = [el('p', 'Runtime policy ' + out.name + ' stored: ' + out.paths + ' paths, ' + out.excludes + ' excludes.')];
    const ul = el('ul');
    ul.id = 'assigned';
    let allOk = true;
    for (const a of out.assigned) {
      const li = el('li', a.message, a.ok ? '' : 'error');
      li.setAttribute('data-agent', a.id);
      li.setAttribute('data-ok', a.ok ? 'yes' : 'no');
      if (!a.ok) allOk = false;
      ul.appendChild(li);
    }
    if (out.assigned.length) nodes.push(ul);
    showResult(allOk, nodes);
  } catch (e) {
    showResult(false, [el('p', e.message)]);
  } finally {
    button.disabled = false;
  }
}

async function uploadPage() {
  const form = document.getElementById('upload-form');
  try {
    session = await getJSON('/api/session');
    const data = await getJSON('/api/agents');
    const box = document.getElementById('agent-choices');
    box.replaceChildren();
    if (!data.agents.length) box.appendChild(el('span', 'no agents on the verifier', 'hint'));
    for (const a of data.agents) {
      const lab = el('label');
      const cb = el('input');
      cb.type = 'checkbox';
      cb.value = a.id;
      cb.setAttribute('data-agent', a.id);
      lab.appendChild(cb);
      lab.appendChild(document.createTextNode(' ' + a.id + ' (' + a.state_name + (a.policy ? ', policy ' + a.policy : '') + ')'));
      box.appendChild(lab);
    }
  } catch (e) {
    showResult(false, [el('p', 'Cannot load: ' + e.message)]);
  }
  form.addEventListener('submit', submitUpload);
  form.setAttribute('data-ready', 'yes');
}

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.getAttribute('data-page');
  if (page === 'agents') agentsPage();
  else if (page === 'upload') uploadPage();
});
