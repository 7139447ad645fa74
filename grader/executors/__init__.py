"""Where a batch's submissions run: ``slots`` plans the parallel places (CPU or GPU), ``local``
runs work in them on this machine, ``children`` ends what the runs started when a batch stops."""
