// The analysts' page in a real headless Chromium (the system's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded). Started by tests/browser_e2e.rs with
// CASEGATE_URL, CASEGATE_TOKEN, CASE, MARKER (text of the encrypted vendor message),
// TRIAGED (subject of a message waiting in triage) and SHOTS (screenshot directory).
// Exits 0 when every step saw what it should; otherwise prints the step and exits 1.
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) { console.error(`missing ${k}`); process.exit(2); }
  return v;
};
const base = env('CASEGATE_URL');
const token = env('CASEGATE_TOKEN');
const kase = env('CASE');
const marker = env('MARKER');
const triaged = env('TRIAGED');
const shots = env('SHOTS');
const caseUrl = `${base}/threads/${encodeURIComponent(kase)}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
});
let step = 'start';
const requests = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  // Nothing may be loaded from anywhere but casegate itself.
  page.on('request', (r) => requests.push(r.url()));
  const see = async (text) => {
    const body = await page.textContent('body');
    if (!body.includes(text)) throw new Error(`expected to see ${JSON.stringify(text)}`);
  };

  step = 'log in';
  await page.goto(`${base}/`);
  if (!page.url().endsWith('/login')) throw new Error(`not sent to /login: ${page.url()}`);
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await see('Triage queue');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'casegate_session');
  if (!session || !session.httpOnly || session.sameSite !== 'Strict') {
    throw new Error(`session cookie not HttpOnly+Strict: ${JSON.stringify(session)}`);
  }

  step = 'triage queue';
  await see(triaged);
  await see('Why it waits');
  await page.screenshot({ path: `${shots}/1-triage.png`, fullPage: true });

  // A phone-sized screen (375 px) with the same session: nothing may be wider than the
  // screen — neither the page nor a table scrolled inside it — and a table's cells, stacked
  // one block per row, carry their column's heading as a visible label.
  const phone = await browser.newContext({ viewport: { width: 375, height: 740 } });
  await phone.addCookies(cookies);
  const small = await phone.newPage();
  small.setDefaultTimeout(20000);
  small.on('request', (r) => requests.push(r.url()));
  const narrow = async (path, shot, mustSee, labels) => {
    step = `a narrow screen: ${path}`;
    await small.goto(`${base}${path}`);
    const body = await small.textContent('body');
    if (!body.includes(mustSee)) throw new Error(`expected to see ${JSON.stringify(mustSee)}`);
    const r = await small.evaluate(() => {
      const width = window.innerWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > width + 1 || e.scrollWidth > e.clientWidth + 1)
        .filter((e) => getComputedStyle(e).overflowX !== 'hidden' && !['PRE', 'TEXTAREA', 'IFRAME'].includes(e.tagName))
        .map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
      const cells = [...document.querySelectorAll('table.list td')];
      const shown = cells.map((td) => ({
        label: td.dataset.label || '',
        before: getComputedStyle(td, '::before').content,
        visible: td.getBoundingClientRect().width > 0,
        right: td.getBoundingClientRect().right,
      }));
      const heads = [...document.querySelectorAll('table.list thead')]
        .filter((h) => h.getBoundingClientRect().height > 0).length;
      return { page: document.documentElement.scrollWidth, width, wide, shown, heads };
    });
    if (r.page > r.width) throw new Error(`${path} is ${r.page} px wide on a ${r.width} px screen`);
    if (r.wide.length) throw new Error(`${path}: wider than the screen: ${r.wide.slice(0, 5).join(', ')}`);
    if (r.heads) throw new Error(`${path}: table headings still shown on a narrow screen`);
    const labelled = r.shown.filter((c) => c.visible);
    for (const c of labelled) {
      if (!c.label || c.before !== JSON.stringify(c.label)) {
        throw new Error(`${path}: a cell without its visible label: ${JSON.stringify(c)}`);
      }
    }
    for (const want of labels) {
      if (!labelled.some((c) => c.label === want)) {
        throw new Error(`${path}: no cell labelled ${JSON.stringify(want)} in ${JSON.stringify(labelled.map((c) => c.label))}`);
      }
    }
    await small.screenshot({ path: `${shots}/${shot}.png`, fullPage: true });
  };
  await narrow('/', '6-narrow-triage', triaged, []);

  step = 'read the encrypted vendor message';
  await page.goto(caseUrl);
  await see('encrypted');
  await page.screenshot({ path: `${shots}/2-thread.png`, fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click('ol.messages li a')]);
  await see(marker);
  await see('signed by FooCorp');
  await see('Routing');
  await page.screenshot({ path: `${shots}/3-message.png`, fullPage: true });

  step = 'assign the triaged message';
  await page.goto(`${base}/`);
  const item = page.locator('li.item', { hasText: triaged });
  await item.locator('input[name=thread]').fill(kase);
  await Promise.all([page.waitForNavigation(), item.locator('button').click()]);
  await see('is now in');
  await page.goto(`${base}/`);
  const still = await page.locator('li.item', { hasText: triaged }).count();
  if (still !== 0) throw new Error('the assigned message is still in the queue');

  step = 'compose and preview a notice';
  await page.goto(caseUrl);
  await Promise.all([page.waitForNavigation(), page.click('text=Compose a notice')]);
  await page.fill('textarea[name=body]', 'We plan to publish on 2027-01-15.');
  await Promise.all([page.waitForNavigation(), page.click('text=Preview who gets it')]);
  await see('get an encrypted copy');
  await see('held');
  await page.screenshot({ path: `${shots}/4-preview.png`, fullPage: true });

  step = 'send it and see its outbox copies';
  await Promise.all([page.waitForNavigation(), page.click('text=Send to these recipients')]);
  await see('Notice queued');
  await page.goto(`${caseUrl}#outbox`);
  const rows = await page.locator('#outbox tbody tr').allTextContents();
  if (!rows.some((r) => r.includes('queued')) || !rows.some((r) => r.includes('held'))) {
    throw new Error(`outbox rows: ${JSON.stringify(rows)}`);
  }
  await page.screenshot({ path: `${shots}/5-outbox.png`, fullPage: true });

  await narrow(`/threads/${encodeURIComponent(kase)}`, '7-narrow-thread', 'Outbox',
    ['Organisation', 'Contact', 'Key', 'Recipient', 'Status', 'Attempts']);
  await narrow('/threads', '8-narrow-threads', kase, ['Number', 'Planned publication']);
  await narrow('/outbox', '9-narrow-outbox', 'Outbox', ['Thread', 'Recipient', 'Queued']);

  step = 'log out';
  await page.goto(`${base}/`);
  await Promise.all([page.waitForNavigation(), page.click('text=Log out')]);
  await page.goto(`${base}/threads`);
  if (!page.url().endsWith('/login')) throw new Error('still logged in after logging out');

  const foreign = requests.filter((u) => !u.startsWith(base));
  if (foreign.length) throw new Error(`requests outside casegate: ${foreign.join(', ')}`);
  console.log(`browser e2e: all steps passed (${requests.length} requests, all to casegate)`);
} catch (e) {
  console.error(`browser e2e failed at step "${step}": ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
