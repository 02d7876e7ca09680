/**
 * Whether the emulated link carries bytes right now: an up/down schedule (fixed or seeded random)
 * and short silent stalls at a seeded random rate. Emits 'change' with the new state and its cause.
 */
import { EventEmitter } from 'node:events';
import type { LinkSchedule } from './options.js';
import { exponential, type Random } from './random.js';

/** Why the link changed state. */
export type ChangeCause = 'schedule' | 'stall';

/** Events of {@link LinkState}. */
export interface LinkStateEvents {
  change: [up: boolean, cause: ChangeCause];
}

/** The link's up/down state over time. */
export class LinkState extends EventEmitter<LinkStateEvents> {
  /** The schedule says up. */
  scheduleUp = true;
  /** A silent stall is holding bytes. */
  stalled = false;
  /** Down periods begun so far. */
  outages = 0;
  /** Silent stalls begun so far. */
  stalls = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly schedule: LinkSchedule,
    private readonly random: Random,
    private readonly stall: { everyMs: number | undefined; forMs: number },
  ) {
    super();
  }

  /** Bytes move only when the schedule says up and no stall holds them. */
  get up(): boolean {
    return this.scheduleUp && !this.stalled;
  }

  /** Starts the schedule and the stall process. */
  start(): void {
    this.nextPeriod(true);
    this.nextStall();
  }

  /** Stops every timer. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private after(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  private nextPeriod(up: boolean): void {
    const s = this.schedule;
    if (s.kind === 'always') return;
    const ms = s.kind === 'fixed' ? (up ? s.upMs : s.downMs) : exponential(this.random, up ? s.meanUpMs : s.meanDownMs);
    if (!up && ms === 0) return this.nextPeriod(true);
    this.after(ms, () => {
      this.scheduleUp = !up;
      if (up) this.outages++;
      this.emit('change', this.up, 'schedule');
      this.nextPeriod(!up);
    });
  }

  private nextStall(): void {
    const every = this.stall.everyMs;
    if (every === undefined) return;
    this.after(exponential(this.random, every), () => {
      this.stalls++;
      this.stalled = true;
      this.emit('change', this.up, 'stall');
      this.after(this.stall.forMs, () => {
        this.stalled = false;
        this.emit('change', this.up, 'stall');
        this.nextStall();
      });
    });
  }
}
