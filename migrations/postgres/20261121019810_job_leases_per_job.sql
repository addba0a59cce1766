-- Up Migration
-- graphile-worker locks a job with the id of its worker pool (one per process), so the jobs a
-- process runs at once share it: a lease is per pool and job.
alter table ops.job_leases drop constraint job_leases_pkey;
alter table ops.job_leases alter column job_key set not null;
alter table ops.job_leases add constraint job_leases_pkey primary key (worker_id, job_key);

-- Down Migration
alter table ops.job_leases drop constraint job_leases_pkey;
alter table ops.job_leases alter column job_key drop not null;
alter table ops.job_leases add constraint job_leases_pkey primary key (worker_id);
