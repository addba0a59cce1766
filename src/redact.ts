/**
 * Secrets never reach logs, job payloads or stored error messages. Values registered here
 * are replaced wherever they appear in text, and query-string keys that carry credentials
 * are masked in URLs.
 */
const secrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

const URL_SECRET_PARAMS = /([?&](?:apikey|api_key|apiKey|token|access_token|key|signature|password)=)[^&#\s"']*/gi;
/** The password of user:password@ in a URL (postgres://, http://, ws://, ...). */
const URL_USERINFO_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/"']*:)[^\s@/"']+@/gi;

export function redact(text: string): string {
  let out = text.replace(URL_SECRET_PARAMS, '$1[redacted]').replace(URL_USERINFO_PASSWORD, '$1[redacted]@');
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}
