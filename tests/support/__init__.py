"""What the tests share; no test module imports another.

servers (the pytest plugin: private Redis, RabbitMQ, moto's server), stores (the pytest plugin: private
Ceph RGW and SeaweedFS), processes (s3thumbs subprocesses), pipelines (s3thumbs wired to a real store),
memory (resident sets of process trees), buckets and queues (S3 and SQS set-ups and checks),
notifications and sns_signatures (what senders post), webhooks (receiving what a store posts),
publishing (tasks on the broker, results off it), images, hostile (images made to hurt a decoder) and
rendering, faults (fault injection), and the small helpers of one subject each (backfill, jobs, metrics).
"""
