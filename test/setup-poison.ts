/**
 * Every suite runs with the payload reader's reused buffers poisoned once consumed (core's
 * poisonReusedOutput): a consumer that keeps a view instead of a copy fails at once. The switch is
 * per process, so this reaches core's sources (its own tests) as well as its dist (@ferry/core).
 */
import { poisonReusedOutput } from '@ferry/core';

poisonReusedOutput(true);
