"""The sequential layer engine: runs a model one decoder layer at a time on calibration windows,
collecting each linear's input statistics, wherever the layers live (:mod:`.layer_store`)."""
