// Headless Debian Chromium for the call tests: fake microphone and camera without prompts, and
// WebRTC allowed on loopback. `extraArgs` adds switches for one test.
import { chromium } from 'playwright-core';

export function launchForCalls(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream', '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection', ...extraArgs,
    ],
  });
}
