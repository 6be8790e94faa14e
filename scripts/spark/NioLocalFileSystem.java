package loadbay.spark;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system ({@code file:}) with permissions set through java.nio.
 *
 * <p>Without Hadoop's native library (the pyspark wheel has none), {@code RawLocalFileSystem} forks a
 * {@code chmod} process for every file and folder it creates: six per INSERT (the driver's job folders and the
 * executor's task files), each a fork of a JVM of a gigabyte. The test cluster of scripts/spark.sh puts its
 * warehouse on this class instead ({@code spark.hadoop.fs.file.impl}); everything else is Hadoop's own.
 */
public class NioLocalFileSystem extends LocalFileSystem {
  public NioLocalFileSystem() {
    super(new Raw());
  }

  /** The raw (checksum-less) file system underneath, whose {@code setPermission} does not fork. */
  public static class Raw extends RawLocalFileSystem {
    @Override
    public void setPermission(Path path, FsPermission permission) throws IOException {
      if (permission.getStickyBit()) {  // java.nio has no sticky bit: Hadoop's own chmod
        super.setPermission(path, permission);
        return;
      }
      String rwx = permission.getUserAction().SYMBOL + permission.getGroupAction().SYMBOL
          + permission.getOtherAction().SYMBOL;
      Files.setPosixFilePermissions(pathToFile(path).toPath(), PosixFilePermissions.fromString(rwx));
    }
  }
}
