"""Where a batch's submissions run: ``slots`` plans the parallel places (CPU or GPU) and ``local``
runs work in them on this machine; on a cluster, ``shards`` hands shares of the batch to tasks
(``task``) that ``slurm`` or ``ray_cluster`` queue, with ``cluster`` turning the command line into both."""
