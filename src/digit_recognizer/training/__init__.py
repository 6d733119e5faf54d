"""Training one architecture on one fold: device and precision, the loop, augmentation, predictions, timings."""
