"""What the tests share; no test module imports another.

servers (the pytest plugin: private Redis, RabbitMQ, moto's server), processes (s3thumbs subprocesses),
buckets and queues (S3 and SQS set-ups and checks), notifications and sns_signatures (what senders post),
publishing (tasks on the broker, results off it), images and rendering, faults (fault injection), and the
small helpers of one subject each (backfill, jobs, metrics).
"""
