// The peak resident set size of this process since it started, in bytes. Linux's VmHWM (the
// high-water mark of this process's own memory map) when /proc is there, else
// process.resourceUsage().maxRSS. Not maxRSS alone: a spawned child's maxRSS also counts the parent's
// pages between fork and exec (the kernel carries the old map's high-water mark over exec), so a
// 100 MB agent started by a 250 MB bench process reported 250 MB.
import { readFileSync } from 'node:fs';

/** Peak RSS in bytes (see the file comment). */
export function peakRss() {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // no /proc (not Linux): fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
