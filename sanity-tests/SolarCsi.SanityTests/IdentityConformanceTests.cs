using Csi.V1;
using ServiceType = Csi.V1.PluginCapability.Types.Service.Types.Type;

namespace SolarCsi.SanityTests;

[Collection(ClusterCollection.Name)]
public sealed class IdentityConformanceTests(ClusterFixture fx)
{
    [Fact]
    public async Task BothPluginsNameTheDriverAndAVersion()
    {
        foreach (var identity in new[] { fx.ControllerIdentity, fx.A.Identity })
        {
            var info = await identity.GetPluginInfoAsync(new GetPluginInfoRequest());
            Assert.Equal(fx.Cluster.DriverName, info.Name);
            Assert.Matches(@"^\d+\.\d+\.\d+", info.VendorVersion);
            Assert.True((await identity.ProbeAsync(new ProbeRequest())).Ready);
        }
    }

    [Fact]
    public async Task OnlyTheControllerAdvertisesTheControllerService()
    {
        var controller = (await fx.ControllerIdentity.GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest())).Capabilities;
        var node = (await fx.A.Identity.GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest())).Capabilities;
        Assert.Contains(controller, c => c.Service?.Type == ServiceType.ControllerService);
        Assert.Contains(controller, c => c.Service?.Type == ServiceType.VolumeAccessibilityConstraints);
        Assert.DoesNotContain(node, c => c.Service?.Type == ServiceType.ControllerService);
        Assert.Contains(controller, c => c.Service?.Type == ServiceType.GroupControllerService);
        Assert.DoesNotContain(node, c => c.Service?.Type == ServiceType.GroupControllerService);
        Assert.Contains(node, c => c.VolumeExpansion?.Type == PluginCapability.Types.VolumeExpansion.Types.Type.Online);
    }
}
