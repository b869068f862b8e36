"""Models larger than RAM: read a sharded safetensors checkpoint one decoder layer at a time
(:mod:`.checkpoint`), run it through the one engine (:mod:`.store`), and write the pruned layer into
the output folder's shards (:mod:`.writer`) before the next one is read."""
