package org.pytorch.executorch;

/** Stub: the members of executorch-android's Tensor that the app calls. */
public abstract class Tensor {
    public static Tensor fromBlob(long[] data, long[] shape) {
        throw new UnsupportedOperationException("stub");
    }

    public static Tensor fromBlob(float[] data, long[] shape) {
        throw new UnsupportedOperationException("stub");
    }

    public long[] shape() {
        throw new UnsupportedOperationException("stub");
    }

    public float[] getDataAsFloatArray() {
        throw new UnsupportedOperationException("stub");
    }
}
