// Shared by the console's browser tests: the broker and console addresses
// (from run.sh), headless Chromium through playwright-core, a page that
// records console errors and keeps a screenshot when its test fails.
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Kafka, logLevel } from 'kafkajs';

export const CONSOLE_URL = process.env.CONSOLE_URL || 'http://127.0.0.1:9644';
export const BROKER = process.env.KAFKA_BROKER || '127.0.0.1:9092';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

export const kafka = new Kafka({ clientId: 'console-tests', brokers: [BROKER], logLevel: logLevel.NOTHING });

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** A unique name per run, so reruns against one broker do not collide. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
}

/**
 * Runs `body(page, consoleErrors)` on a fresh page; fails if the page logged
 * console errors or threw (except messages matching `allow`); on failure
 * saves a screenshot under artifacts/ and rethrows.
 */
export async function withPage(browser, name, body, { allow = [] } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => d.accept());
  try {
    await body(page);
    const unexpected = errors.filter((e) => !allow.some((re) => re.test(e)));
    if (unexpected.length) throw new Error(`console errors on the page:\n${unexpected.join('\n')}`);
  } catch (err) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, `${name.replace(/[^a-z0-9-]+/gi, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    err.message += `\n(screenshot: ${file})`;
    throw err;
  } finally {
    await context.close();
  }
}

/** Opens a console page and waits until it rendered (or showed its error). */
export async function open(page, hash) {
  await page.goto(`${CONSOLE_URL}/${hash}`);
  await page.waitForSelector(`main[data-ready="${hash}"]`, { timeout: 15000 });
}
