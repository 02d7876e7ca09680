import { describe, expect, it } from 'vitest';
import { commandWordIndex } from '../src/command-word.js';
import { comparePull, formatRatio } from '../src/compare.js';
import { formatDuration, formatRate, parseDuration, parseExpiry, parseHostPort, parseRate, parseSize } from '../src/units.js';

describe('option units', () => {
  it('parses link rates in bits per second', () => {
    const cases: [string, number][] = [
      ['9600bit', 9600],
      ['64kbit', 64_000],
      ['1mbit', 1_000_000],
      ['2Mbit/s', 2_000_000],
      ['100kB/s', 800_000],
      ['64kbps', 64_000],
      ['1MiB/s', 8 * 1024 * 1024],
      ['9600', 9600],
      ['2.4kbit', 2400],
    ];
    for (const [text, bits] of cases) expect(parseRate(text), text).toBe(bits);
    for (const bad of ['', 'fast', '64 kbit x', '0bit', '-5kbit', '64xbit']) expect(() => parseRate(bad), bad).toThrow(/--link takes a link rate/);
  });

  it('formats rates and durations', () => {
    expect([9600, 64_000, 1_000_000, 2_500_000].map(formatRate)).toEqual(['9.6 kbit/s', '64 kbit/s', '1 Mbit/s', '2.5 Mbit/s']);
    expect([0.42, 14.6, 75, 3600, 7300, 200_000].map(formatDuration)).toEqual(['0.4 s', '15 s', '1 min 15 s', '1 h', '2 h 1 min', '2 d 7 h']);
    expect([1, 2.345, 168.4].map(formatRatio)).toEqual(['1.0x', '2.3x', '168x']);
  });

  it('parses sizes, binary unless written kB/MB', () => {
    expect(['65536', '64K', '64KiB', '64k', '1MiB', '1M', '64kB'].map((s) => parseSize(s, '--chunk-size'))).toEqual([65536, 65536, 65536, 65536, 1048576, 1048576, 64000]);
    expect(() => parseSize('lots', '--chunk-size')).toThrow(/--chunk-size takes a size/);
  });

  it('parses expiry as a span, a date or unix seconds, in the future only', () => {
    const now = 1_800_000_000;
    expect(parseExpiry('90d', now)).toBe(now + 90 * 86400);
    expect(parseExpiry('12h', now)).toBe(now + 12 * 3600);
    expect(parseExpiry('2030-01-01', now)).toBe(Date.UTC(2030, 0, 1) / 1000);
    expect(parseExpiry('1900000000', now)).toBe(1_900_000_000);
    expect(() => parseExpiry('2020-01-01', now)).toThrow(/not in the future/);
    expect(() => parseExpiry('soon', now)).toThrow(/--expires takes/);
  });

  it('compares a bundle with docker pull of all or only the changed layers', () => {
    const c = comparePull(1000, [{ mode: 'reuse', gzipSize: 50_000 }, { mode: 'rebuild', gzipSize: 20_000 }], 8000);
    expect(c).toMatchObject({ fullImage: { bytes: 70_000, layers: 2 }, changedLayers: { bytes: 20_000, layers: 1 }, ratio: { fullImage: 70, changedLayers: 20 } });
    expect(c.link!.seconds).toEqual({ bundle: 1, changedLayers: 20, fullImage: 70 });
  });
});

describe('parseDuration and parseHostPort', () => {
  it('reads durations in ms, s, min and h; a bare number is seconds', () => {
    expect(parseDuration('500ms', '--x')).toBe(500);
    expect(parseDuration('20s', '--x')).toBe(20_000);
    expect(parseDuration('1.5', '--x')).toBe(1500);
    expect(parseDuration('2min', '--x')).toBe(120_000);
    expect(parseDuration('1h', '--x')).toBe(3_600_000);
    for (const bad of ['', 'soon', '-1s', '1d']) expect(() => parseDuration(bad, '--x')).toThrow(/--x takes a duration/);
  });

  it('reads HOST:PORT, [v6]:PORT and :PORT; port 0 only where allowed', () => {
    expect(parseHostPort('10.0.0.1:80', '--t')).toEqual({ host: '10.0.0.1', port: 80 });
    expect(parseHostPort('[::1]:8080', '--t')).toEqual({ host: '::1', port: 8080 });
    expect(parseHostPort(':9000', '--t')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseHostPort('localhost:0', '--l', true)).toEqual({ host: 'localhost', port: 0 });
    for (const bad of ['host', 'host:0', 'host:70000', 'a:b']) expect(() => parseHostPort(bad, '--t')).toThrow(/--t takes HOST:PORT/);
  });

  it('finds the command word after global options, skipping --store\'s value (main.ts reads it before loading the commands)', () => {
    const cases: [string[], number | undefined][] = [
      [['apply', 'b.ferry'], 0],
      [['--json', 'apply'], 1],
      [['--store', 'apply', 'images'], 2],
      [['--store=/s', 'agent'], 1],
      [['images', 'apply'], 0],
      [['--', 'apply'], undefined],
      [['--json'], undefined],
      [[], undefined],
    ];
    for (const [argv, at] of cases) expect(commandWordIndex(argv), argv.join(' ')).toBe(at);
  });
});
