import type { WsVenue } from './runtime/venue.ts';
import type { HistoryVenue } from './runtime/history.ts';
import { binance } from './binance.ts';
import { oanda } from './oanda.ts';
import { polygon } from './polygon.ts';
import { binanceRest } from './binance-rest.ts';
import { ibkr } from './ibkr.ts';
import { ibkrHistory } from './ibkr-history.ts';
import { oandaRest } from './oanda-rest.ts';
import { polygonRest } from './polygon-rest.ts';
import { dukascopyRest } from './dukascopy-rest.ts';
import { dukascopyJson } from './dukascopy-json.ts';

/** Live venues by name. A new venue is one file here plus its normalizer in sql/venues/. */
export const WS_VENUES: Readonly<Record<string, WsVenue>> = Object.freeze({ binance, oanda, polygon, ib: ibkr });

/** Venues with a REST history (backfill and gap recovery). A new one is a *-rest.ts file here plus its normalizer. */
export const HISTORY_VENUES: Readonly<Record<string, HistoryVenue>> = Object.freeze({ binance: binanceRest, oanda: oandaRest, polygon: polygonRest, dukascopy: dukascopyRest, 'dukascopy-json': dukascopyJson, ib: ibkrHistory });
