-- The detectors quality.run_detector() knows, and how far back the quality_detect job looks on
-- its schedule (so that late data is judged again and a silence that is still going on grows).

insert into quality.detectors (detector, fn, kinds, lookback, description) values
  ('gaps', 'quality.find_gaps(timestamptz, timestamptz, integer[])', array['gap'], '6 hours',
   'Holes in an instrument''s data against its calendar and usual activity: market_closed, venue_outage, our_loss.'),
  ('spikes', 'quality.find_spikes(timestamptz, timestamptz, integer[])', array['spike'], '2 hours',
   'Robust spikes in 1-minute series (median/MAD of the previous hour), with warm-up and cross-source confirmation.'),
  ('bar_anomalies', 'quality.find_bar_anomalies(timestamptz, timestamptz, integer[])',
   array['ohlc_invalid', 'nonpositive_price', 'non_finite', 'size_out_of_range'], '2 hours',
   'OHLC invariants, non-positive or non-finite prices, volumes out of range in bars and candles.'),
  ('quote_anomalies', 'quality.find_quote_anomalies(timestamptz, timestamptz, integer[])',
   array['crossed_quote', 'locked_quote', 'size_out_of_range'], '1 hour',
   'Crossed and locked quotes, quote sizes out of range.'),
  ('trade_anomalies', 'quality.find_trade_anomalies(timestamptz, timestamptz, integer[])',
   array['size_out_of_range'], '1 hour',
   'Trade sizes out of range for the instrument.'),
  ('timestamps', 'quality.find_timestamp_anomalies(timestamptz, timestamptz, integer[])',
   array['future_timestamp', 'stale_timestamp', 'latency'], '1 hour',
   'Event times in the future or far in the past; receive-minus-event latency above its source''s usual band.'),
  ('quarantine', 'quality.find_quarantine_anomalies(timestamptz, timestamptz, integer[])',
   array['ohlc_invalid', 'non_finite', 'nonpositive_price', 'future_timestamp', 'stale_timestamp', 'malformed'], '1 hour',
   'Payloads the normalizers refused (staging.quarantine), by kind.'),
  ('silent_feeds', 'quality.find_silent_feeds(timestamptz, timestamptz, integer[])', array['silent_feed'], '1 hour',
   'Connected sessions that landed no frame for quality.silent_feed_seconds or more.'),
  ('payload_shapes', 'quality.find_payload_shape_changes(timestamptz, timestamptz, integer[])', array['payload_shape'], '10 minutes',
   'New key sets or timestamp units in a venue''s raw payloads (sampled from staging.frames).')
on conflict (detector) do update
  set fn = excluded.fn, kinds = excluded.kinds, lookback = excluded.lookback, description = excluded.description;
