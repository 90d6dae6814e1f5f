package org.pytorch.executorch;

/** Stub: the members of executorch-android's Module that the app calls. */
public class Module {
    public static final int LOAD_MODE_MMAP = 1;

    public static Module load(String modelPath, int loadMode, int numThreads) {
        throw new UnsupportedOperationException("stub");
    }

    public int loadMethod(String methodName) {
        throw new UnsupportedOperationException("stub");
    }

    public String[] getMethods() {
        throw new UnsupportedOperationException("stub");
    }

    public EValue[] forward(EValue... inputs) {
        throw new UnsupportedOperationException("stub");
    }

    public EValue[] execute(String methodName, EValue... inputs) {
        throw new UnsupportedOperationException("stub");
    }

    public void destroy() {
        throw new UnsupportedOperationException("stub");
    }
}
