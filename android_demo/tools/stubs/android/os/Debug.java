package android.os;

/** Stub: the member of android.os.Debug that the app calls. */
public final class Debug {
    public static long getNativeHeapAllocatedSize() {
        throw new UnsupportedOperationException("stub");
    }
}
