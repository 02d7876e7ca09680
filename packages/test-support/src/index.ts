export * from './tools.js';
export * from './images.js';
export * from './verify.js';
export * from './big-image.js';
export * from './bundle-fixture.js';
export * from './kill-child.js';
export * from './cli.js';
export * from './errors.js';
