using MoCoV3.Models;

namespace MoCoV3.Tests.Models;

[TestClass]
public sealed class EmbeddingSpecTests
{
    [TestMethod]
    [DataRow("cls", false, 1, 32)]
    [DataRow("cls+mean", true, 1, 64)]
    [DataRow("cls@last3", false, 3, 96)]
    [DataRow("cls+mean@last4", true, 4, 256)]
    public void ParsesWhatItFormatsAndKnowsItsWidth(string text, bool meanPatch, int lastBlocks, int widthAt32)
    {
        Assert.IsTrue(EmbeddingSpec.TryParse(text, out var spec), text);
        Assert.AreEqual(new EmbeddingSpec(meanPatch, lastBlocks), spec);
        Assert.AreEqual(widthAt32, spec.Width(32));
        Assert.AreEqual(text, spec.ToString());
    }

    [TestMethod]
    [DataRow("")]
    [DataRow("avg")]
    [DataRow("mean")]
    [DataRow("cls@last")]
    [DataRow("cls@last0")]
    [DataRow("cls@last-1")]
    [DataRow("cls@last 4")]
    [DataRow("cls+mean@last4x")]
    [DataRow("cls+mean@4")]
    [DataRow("cls@last1000")]
    [DataRow("CLS")]
    public void RefusesAnythingElse(string text)
    {
        Assert.IsFalse(EmbeddingSpec.TryParse(text, out _), text);
        Assert.ThrowsExactly<FormatException>(() => EmbeddingSpec.Parse(text));
    }

    [TestMethod]
    public void APresetMayNotReadMoreBlocksThanItHas()
    {
        var preset = TestPresets.MicroVit.WithEmbedding("cls+mean@last3");
        var e = Assert.ThrowsExactly<InvalidDataException>(() => preset.Validate("deep.json"));
        StringAssert.Contains(e.Message, "deep.json: preset 'micro-vit': embedding 'cls+mean@last3' reads 3 blocks, but depth is 2");
        (preset.WithEmbedding("cls+mean@last2")).Validate("ok.json");
    }
}
