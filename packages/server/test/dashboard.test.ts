/**
 * The web dashboard in a real headless Chromium (Debian's chromium driven by playwright-core): it
 * loads from a real server, takes the token from its URL fragment, shows an agent's bar, and moves
 * it when that agent posts a report through the API, without a reload; an agent that misses its
 * check-ins turns stale as the server's clock moves. A screenshot is saved under test-output/.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store, inventoryDigest, openImage, parsePlatform, type Digest } from '@ferry/core';
import { toolsOrSkip } from '@ferry/test-support';
import { agent, call, makeLayout, report, seedStore, signRelease, startTestServer, token, type TestServer } from './helpers.js';

const tools = toolsOrSkip('chromium');
const OUTPUT = resolve(fileURLToPath(new URL('../../../test-output/dashboard', import.meta.url)));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe.skipIf(!tools)('the web dashboard in Chromium', () => {
  let t: TestServer;
  let work: string;
  let profile: string;
  let bundle: Digest;
  let v1: Digest[];
  let browser: BrowserContext;
  let page: Page;
  let operator: string;
  let skew = 0;
  const tokens: Record<string, string> = {};

  const post = (id: string, counter: number, fields: Parameters<typeof report>[1]) => call(t.url, 'POST', `/v1/agents/${id}/reports`, { token: tokens[id], json: { counter: counter + 1, reports: [report(counter, { channel: 'stable', release: 1, ...fields })] } });
  const checkin = (id: string, counter: number) => call(t.url, 'POST', `/v1/agents/${id}/checkin`, { token: tokens[id], json: { counter, channels: ['stable'], inventory: { digest: inventoryDigest(v1), layers: v1 } } });
  const row = (id: string) => page.locator(`#agents tr[data-agent="${id}"]`);
  const classes = async (id: string) => (await row(id).getAttribute('class')) ?? '';

  /** A server with a release of app:v2 whose bundle for v1 devices is built, and three agents. */
  async function fleet(): Promise<void> {
    work = await mkdtemp(join(tmpdir(), 'ferry-dashboard-'));
    const layout = await makeLayout(work);
    t = await startTestServer({ seed: (dir) => seedStore(dir, layout, ['v1', 'v2']).then(() => undefined), build: { pollMs: 100, workers: 1, level: 3 }, buildRetryAfter: 1, rateLimit: false, now: () => Date.now() + skew, checkinInterval: 30, events: { flushMs: 50, heartbeatMs: 250, summaryMs: 100 } });
    operator = await token(t, 'operator', 'ops');
    const publisher = await token(t, 'publisher', 'ci');
    const store = await Store.open(join(t.dir, 'store'));
    const [i1, i2] = [await store.resolve('app:v1'), await store.resolve('app:v2')];
    v1 = i1.layers.map((l) => l.diffId);
    const source = await openImage(layout, { ref: 'v2', platform: parsePlatform('linux/amd64') });
    const layers = source.layers.map((l) => ({ diffId: l.diffId, mediaType: l.mediaType!, size: l.size! }));
    await call(t.url, 'PUT', '/v1/refs/app:v2', { token: publisher, json: { manifest: i2.manifestDigest, source: { layers } } });
    await call(t.url, 'POST', '/v1/releases', { token: publisher, json: { envelope: signRelease(i2, t.releaseKey, 'stable', 1) } });
    for (const id of ['edge-1', 'edge-2', 'edge-3']) tokens[id] = await agent(t, id);
    for (let counter = 1; ; counter++) {
      const a = (await checkin('edge-1', counter)).json.assignments[0];
      if (a.state === 'ready') {
        bundle = a.bundle.id;
        break;
      }
      if (counter > 600) throw new Error('the bundle was not built');
      await new Promise((r) => setTimeout(r, 100));
    }
    await checkin('edge-2', 1);
    await checkin('edge-3', 1);
  }

  beforeAll(async () => {
    await fleet();
    await post('edge-1', 1000, { state: 'fetching', bundle, bytesDone: 100_000, bytesTotal: 1_000_000, rate: 2500, eta: 360 });
    await post('edge-3', 2, { state: 'failed', bundle, bytesDone: 0, bytesTotal: 1_000_000, error: { code: 'FERRY_ERR_DISK_FULL', message: 'needs 2.1 MiB more on /var/lib/ferry' } });
    profile = await mkdtemp(join(tmpdir(), 'ferry-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: tools!.chromium, headless: true, args: ARGS, viewport: { width: 1400, height: 800 } });
    page = browser.pages()[0] ?? (await browser.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('shows an agent\'s bar and moves it when the agent reports, without a reload', async () => {
    await page.goto(`${t.url}/#token=${operator}`);
    await expect.poll(() => page.locator('#connection').textContent(), { timeout: 15_000 }).toBe('live');
    // the token left the address bar and stays in this tab
    expect(new URL(page.url()).hash).toBe('');
    expect(await page.evaluate(() => sessionStorage.getItem('ferry-token'))).toBe(operator);

    const pct = row('edge-1').locator('.pct');
    const fill = row('edge-1').locator('.fill');
    await expect.poll(() => pct.textContent(), { timeout: 10_000 }).toBe('10.0%');
    expect(await fill.evaluate((e) => (e as HTMLElement).style.width)).toBe('10%');
    expect(await row('edge-1').locator('td').nth(1).textContent()).toBe('fetching');
    const widthBefore = await fill.evaluate((e) => e.getBoundingClientRect().width);
    await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));

    await post('edge-1', 1002, { state: 'fetching', bundle, bytesDone: 750_000, bytesTotal: 1_000_000, rate: 4000, eta: 62 });
    await expect.poll(() => pct.textContent(), { timeout: 10_000 }).toBe('75.0%');
    expect(await fill.evaluate((e) => (e as HTMLElement).style.width)).toBe('75%');
    await expect.poll(() => fill.evaluate((e) => e.getBoundingClientRect().width), { timeout: 5_000 }).toBeGreaterThan(widthBefore * 5);
    expect(await row('edge-1').locator('td').nth(4).textContent()).toBe('732.4 KiB / 976.6 KiB');
    // the same page: no reload happened
    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    expect(await page.locator('#channels tbody tr').first().locator('td').allTextContents()).toEqual(['stable', '1', 'app:v2', expect.stringMatching(/^[0-9a-f]{12}$/), '', '0 of 3']);
    expect(await page.locator('#bundles tbody tr').first().locator('td').nth(7).textContent()).toBe('2');
    expect(await page.locator('#sum-saved').textContent()).toMatch(/^\d+(\.\d)? [KMG]?i?B \(\d+%\)$/);
  });

  it('marks an agent stale when it misses 3 of its check-in intervals, and saves a screenshot', async () => {
    await post('edge-2', 2, { state: 'idle' });
    await expect.poll(() => row('edge-2').locator('td').nth(1).textContent(), { timeout: 10_000 }).toBe('idle');
    expect(await classes('edge-2')).not.toContain('stale');
    // edge-1 keeps checking in; edge-2 falls silent while the server's clock passes 3 intervals (90 s)
    skew += 100_000;
    await checkin('edge-1', 2000);
    await expect.poll(() => classes('edge-2'), { timeout: 10_000 }).toContain('stale');
    expect(await classes('edge-1')).not.toContain('stale');
    expect(await row('edge-2').locator('td').nth(1).textContent()).toBe('idle (stale)');
    expect(await page.locator('#sum-stale').textContent()).toBe('2');
    expect(await row('edge-3').locator('td').nth(8).textContent()).toBe('FERRY_ERR_DISK_FULL: needs 2.1 MiB more on /var/lib/ferry');

    await mkdir(OUTPUT, { recursive: true });
    const shot = join(OUTPUT, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`dashboard screenshot: ${shot}\n`);
  });
});
