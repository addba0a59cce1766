import type { WsVenue } from './runtime/venue.ts';
import { binance } from './binance.ts';
import { oanda } from './oanda.ts';
import { polygon } from './polygon.ts';

/** Live venues by name. A new venue is one file here plus its normalizer in sql/venues/. */
export const WS_VENUES: Readonly<Record<string, WsVenue>> = Object.freeze({ binance, oanda, polygon });
