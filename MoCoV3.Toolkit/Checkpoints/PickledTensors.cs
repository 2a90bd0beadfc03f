using System.Collections;
using System.Reflection;
using static TorchSharp.torch;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Builds the tensors of an unpickled <c>torch.save</c> file from the descriptors TorchSharp.PyBridge returns when
/// asked not to read them (<c>skipTensorRead</c>): every descriptor in the object graph is replaced by its tensor, the
/// same descriptor (a pickle memo reference) by the same tensor.
/// <para>
/// Why by hand: PyBridge's own read (<c>ReadTensorFromStream</c>) calls <c>as_strided</c> on a fresh
/// <c>torch.empty</c> it keeps no reference to, so a garbage collection during that native call can run the empty
/// tensor's finalizer and free it under libtorch. The fuzz test of the importer crashed the process that way (a
/// segfault in <c>at::native::as_strided_tensorimpl</c>, about one run in two at 6,000 cases). Here the storage
/// tensor stays referenced until the view exists. PyBridge 1.4.4 keeps the descriptor type internal, so its public
/// properties are read by reflection; a PyBridge that changes them is refused with a clear error, not misread.
/// </para>
/// </summary>
internal static class PickledTensors
{
    /// <summary>The full name of PyBridge's descriptor type.</summary>
    private const string DescriptorType = "TorchSharp.PyBridge.PyTorchUnpickler+TensorConstructorArgs";

    /// <summary>Replaces, in place, every tensor descriptor reachable from <paramref name="root"/> by its tensor.</summary>
    /// <param name="root">The unpickled object; dicts, lists and tuples are walked.</param>
    /// <returns><paramref name="root"/>, now holding tensors. On failure every tensor built so far is disposed.</returns>
    public static Hashtable Materialize(Hashtable root)
    {
        var built = new Dictionary<object, Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            Walk(root, built, new HashSet<object>(ReferenceEqualityComparer.Instance));
            return root;
        }
        catch
        {
            foreach (Tensor tensor in built.Values) tensor.Dispose();
            throw;
        }
    }

    private static void Walk(object container, Dictionary<object, Tensor> built, HashSet<object> visited)
    {
        if (!visited.Add(container)) return;
        switch (container)
        {
            case Hashtable dict:
                foreach (object key in dict.Keys.Cast<object>().ToArray())
                    dict[key] = Visit(dict[key], built, visited);
                break;
            case IList { IsReadOnly: false } list:
                for (int i = 0; i < list.Count; i++)
                    list[i] = Visit(list[i], built, visited);
                break;
        }
    }

    private static object? Visit(object? value, Dictionary<object, Tensor> built, HashSet<object> visited)
    {
        if (value is null) return null;
        if (value.GetType().FullName == DescriptorType)
        {
            if (built.TryGetValue(value, out Tensor? tensor)) return tensor;
            tensor = Read(value);
            built.Add(value, tensor);
            return tensor;
        }
        if (value is Hashtable or IList) Walk(value, built, visited);
        return value;
    }

    private static Tensor Read(object descriptor)
    {
        long[] shape = Accessors.Shape(descriptor);
        long[] stride = Accessors.Stride(descriptor);
        long offset = Accessors.StorageOffset(descriptor);
        using Stream data = Accessors.Data(descriptor);
        // PickleScanner has accepted only contiguous tensors at offset 0 that fit in their storage; the view is
        // still built from the file's stride and offset so that the layout is exactly the one saved. `using` keeps
        // the storage referenced past as_strided.
        using Tensor storage = empty(shape, Accessors.DType(descriptor), device: CPU);
        Tensor tensor = storage.as_strided(shape, stride, offset);
        try
        {
            tensor.ReadBytesFromStream(data);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>The descriptor's public properties, bound on first use (a mismatch is a <see cref="NotSupportedException"/> every time).</summary>
    private sealed class Accessors
    {
        private static readonly Lazy<Accessors> Bound = new(() => new Accessors());

        private readonly Func<object, object?> shape, stride, offset, dtype, data;

        private Accessors()
        {
            Type descriptor = typeof(TorchSharp.PyBridge.PyTorchUnpickler).Assembly.GetType(DescriptorType)
                ?? throw Unsupported("no type " + DescriptorType);
            shape = Getter(descriptor, "Shape", typeof(long[]));
            stride = Getter(descriptor, "Stride", typeof(long[]));
            offset = Getter(descriptor, "StorageOffset", typeof(int));
            dtype = Getter(descriptor, "DType", typeof(ScalarType));
            data = Getter(descriptor, "Data", typeof(Stream));
        }

        public static long[] Shape(object d) => (long[])Bound.Value.shape(d)!;

        public static long[] Stride(object d) => (long[])Bound.Value.stride(d)!;

        public static long StorageOffset(object d) => (int)Bound.Value.offset(d)!;

        public static ScalarType DType(object d) => (ScalarType)Bound.Value.dtype(d)!;

        public static Stream Data(object d) => (Stream)Bound.Value.data(d)!;

        private static Func<object, object?> Getter(Type descriptor, string name, Type type)
        {
            PropertyInfo property = descriptor.GetProperty(name, BindingFlags.Public | BindingFlags.Instance)
                ?? throw Unsupported($"{DescriptorType} has no property {name}");
            if (property.PropertyType != type)
                throw Unsupported($"{DescriptorType}.{name} is a {property.PropertyType}, expected {type}");
            return property.GetValue;
        }

        private static NotSupportedException Unsupported(string what) =>
            new($"this TorchSharp.PyBridge is not the one MoCoV3.NET reads tensors with (1.4.4): {what}");
    }
}
