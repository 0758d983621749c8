// Stylesheets are imported for esbuild to bundle (build.mjs); they export nothing.
declare module '*.css';
