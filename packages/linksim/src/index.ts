export * from './options.js';
export * from './linksim.js';
export { seededRandom, deriveSeed, type Random } from './random.js';
