package org.pytorch.executorch;

/** Stub: the members of executorch-android's EValue that the app calls. */
public class EValue {
    public static EValue from(Tensor tensor) {
        throw new UnsupportedOperationException("stub");
    }

    public Tensor toTensor() {
        throw new UnsupportedOperationException("stub");
    }

    public long toInt() {
        throw new UnsupportedOperationException("stub");
    }
}
