// js-yaml 4 is in node_modules as a dependency of graphile-config (through cosmiconfig); the
// compose test parses YAML with it. Only load() is used.
declare module 'js-yaml' {
  export function load(text: string): unknown;
  const yaml: { load(text: string): unknown };
  export default yaml;
}
