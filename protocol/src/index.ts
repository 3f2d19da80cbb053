export * from './api.js';
export * from './dhash.js';
export * from './jpeg.js';
