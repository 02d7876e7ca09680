export * from './body.js';
